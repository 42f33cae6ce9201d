#include "quant/bitpack.h"

#include <cstring>
#include <vector>

#include "core/check.h"
#include "qaq/quant.h"

namespace qaq {
namespace {

// 8 codes <-> B bytes through one 64-bit word; the tail (n % 8 codes) uses a partial word.
template <int B>
void PackT(const std::uint8_t* codes, std::size_t n, std::uint8_t* packed) {
  constexpr std::uint64_t kMask = (1u << B) - 1u;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8, packed += B) {
    std::uint64_t word = 0;
    for (int j = 0; j < 8; ++j) word |= (codes[i + j] & kMask) << (j * B);
    std::memcpy(packed, &word, B);
  }
  if (i < n) {
    std::uint64_t word = 0;
    for (std::size_t j = 0; i + j < n; ++j) word |= (codes[i + j] & kMask) << (j * B);
    std::memcpy(packed, &word, BytesFor(n - i, B));
  }
}

template <int B>
void UnpackT(const std::uint8_t* packed, std::size_t n, std::uint8_t* codes) {
  constexpr std::uint64_t kMask = (1u << B) - 1u;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8, packed += B) {
    std::uint64_t word = 0;
    std::memcpy(&word, packed, B);
    for (int j = 0; j < 8; ++j) codes[i + j] = static_cast<std::uint8_t>((word >> (j * B)) & kMask);
  }
  if (i < n) {
    std::uint64_t word = 0;
    std::memcpy(&word, packed, BytesFor(n - i, B));
    for (std::size_t j = 0; i + j < n; ++j) {
      codes[i + j] = static_cast<std::uint8_t>((word >> (j * B)) & kMask);
    }
  }
}

}  // namespace

bool IsValidBits(int bits) { return (bits >= 0 && bits <= kMaxCodeBits) || bits == kPassThroughBits; }

std::size_t BytesFor(std::size_t n, int bits) {
  QAQ_CHECK(IsValidBits(bits), "bit width {}", bits);
  if (bits == kPassThroughBits) return 2 * n;
  return (n * static_cast<std::size_t>(bits) + 7) / 8;
}

void PackCodes(std::span<const std::uint8_t> codes, int bits, std::uint8_t* packed) {
  QAQ_CHECK(bits >= 0 && bits <= kMaxCodeBits, "bit width {}", bits);
  const std::size_t n = codes.size();
  switch (bits) {
    case 0: return;
    case 1: return PackT<1>(codes.data(), n, packed);
    case 2: return PackT<2>(codes.data(), n, packed);
    case 3: return PackT<3>(codes.data(), n, packed);
    case 4: return PackT<4>(codes.data(), n, packed);
    case 5: return PackT<5>(codes.data(), n, packed);
    case 6: return PackT<6>(codes.data(), n, packed);
    case 7: return PackT<7>(codes.data(), n, packed);
    case 8: std::memcpy(packed, codes.data(), n); return;
  }
}

void UnpackCodes(const std::uint8_t* packed, int bits, std::span<std::uint8_t> codes) {
  QAQ_CHECK(bits >= 0 && bits <= kMaxCodeBits, "bit width {}", bits);
  const std::size_t n = codes.size();
  switch (bits) {
    case 0: std::memset(codes.data(), 0, n); return;
    case 1: return UnpackT<1>(packed, n, codes.data());
    case 2: return UnpackT<2>(packed, n, codes.data());
    case 3: return UnpackT<3>(packed, n, codes.data());
    case 4: return UnpackT<4>(packed, n, codes.data());
    case 5: return UnpackT<5>(packed, n, codes.data());
    case 6: return UnpackT<6>(packed, n, codes.data());
    case 7: return UnpackT<7>(packed, n, codes.data());
    case 8: std::memcpy(codes.data(), packed, n); return;
  }
}

void RequantizeCodesDown(const std::uint8_t* packed, std::size_t n, int from_bits, int to_bits,
                         std::uint8_t* out) {
  QAQ_CHECK(to_bits >= 0 && to_bits <= from_bits && from_bits <= kMaxCodeBits, "requantize {} -> {} bits",
            from_bits, to_bits);
  if (to_bits == 0) return;
  std::vector<std::uint8_t> codes(n);
  UnpackCodes(packed, from_bits, codes);
  for (auto& c : codes) c = static_cast<std::uint8_t>(c >> (from_bits - to_bits));
  PackCodes(codes, to_bits, out);
}

namespace internal {

void PackCodesRef(const std::uint8_t* codes, std::size_t n, int bits, std::uint8_t* packed) {
  std::memset(packed, 0, BytesFor(n, bits));
  for (std::size_t i = 0; i < n; ++i) {
    for (int b = 0; b < bits; ++b) {
      if ((codes[i] >> b) & 1u) {
        const std::size_t bit = i * static_cast<std::size_t>(bits) + static_cast<std::size_t>(b);
        packed[bit / 8] = static_cast<std::uint8_t>(packed[bit / 8] | (1u << (bit % 8)));
      }
    }
  }
}

}  // namespace internal
}  // namespace qaq
