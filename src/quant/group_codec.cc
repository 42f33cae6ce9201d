// The midpoint codec of QAQ-method.md §3-§4 for one group: outlier selection, fp16 metadata,
// codes, decoding and exact sizes. The rules are stated once, in qaq/quant.h.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/check.h"
#include "qaq/quant.h"
#include "quant/bitpack.h"
#include "quant/fp16.h"

namespace qaq {

using internal::Fp16Representable;
using internal::Fp16Rounding;
using internal::Fp16ToFloat;
using internal::FloatToFp16;

AffineMeta AffineFromMeta(GroupMeta meta, int bits) {
  QAQ_CHECK(IsValidBits(bits), "bit width {}", bits);
  if (bits == kPassThroughBits) return {0.0f, 1.0f};
  const float min = Fp16ToFloat(meta.min_fp16);
  const float max = Fp16ToFloat(meta.max_fp16);
  // §3: 2^B segments of width s; code c reconstructs at the midpoint min + (c + 1/2) s.
  const float scale = std::ldexp(max - min, -bits);
  return {min + 0.5f * scale, scale};
}

std::size_t OutlierBytes(std::size_t n) { return sizeof(float) + (n <= 65536 ? 2 : 4); }

std::size_t GroupBytes(std::size_t n, int bits, std::size_t n_outliers) {
  const std::size_t metadata = bits == kPassThroughBits ? 0 : 2 * sizeof(std::uint16_t);
  return BytesFor(n, bits) + metadata + n_outliers * OutlierBytes(n);
}

std::size_t PackedGroup::bytes() const {
  return GroupBytes(static_cast<std::size_t>(size), bits, outliers.size());
}

int OutliersPerSide(std::size_t n, double alpha) {
  QAQ_CHECK(alpha >= 0.0 && alpha <= 1.0, "outlier ratio {}", alpha);
  if (n == 0) return 0;
  // §4: round(alpha/2 * n), halves up; the 1e-9 absorbs the binary representation of decimal
  // ratios (0.01 * 50 / 2 must count as 0.25, and 0.05 * 10 / 2 as exactly one half).
  const auto k = static_cast<std::size_t>(std::floor(alpha * static_cast<double>(n) / 2.0 + 0.5 + 1e-9));
  return static_cast<int>(std::min(k, (n - 1) / 2));
}

GroupQuantizer::GroupQuantizer(double outlier_alpha) : outlier_alpha_(outlier_alpha) {
  QAQ_CHECK(outlier_alpha >= 0.0 && outlier_alpha < 1.0, "outlier ratio {}", outlier_alpha);
}

const GroupAnalysis& GroupQuantizer::Analyze(std::span<const float> values) {
  const std::size_t n = values.size();
  QAQ_CHECK(n < (std::size_t{1} << 32), "group of {} values", n);
  is_outlier_.assign(n, 0);
  order_.clear();
  for (std::size_t i = 0; i < n; ++i) {
    // Values the fp16 metadata cannot bracket (NaN, Inf, |x| > 65504) are always outliers.
    if (Fp16Representable(values[i])) {
      order_.push_back(static_cast<std::uint32_t>(i));
    } else {
      is_outlier_[i] = 1;
    }
  }
  const std::size_t m = order_.size();
  std::size_t k = static_cast<std::size_t>(OutliersPerSide(n, outlier_alpha_));
  k = m == 0 ? 0 : std::min(k, (m - 1) / 2);
  // Ordered by (value, position): ties go to the lower position, so exactly k per side.
  const auto less = [&](std::uint32_t a, std::uint32_t b) {
    return values[a] < values[b] || (values[a] == values[b] && a < b);
  };
  if (k == 1) {
    // The common case (alpha 0.01 on groups of 100 to 299 values): the first and last in that
    // order, found in one pass (m >= 3, so they are two different positions).
    std::uint32_t lo = order_[0], hi = order_[0];
    for (std::size_t j = 1; j < m; ++j) {
      const std::uint32_t i = order_[j];
      if (less(i, lo)) lo = i;
      if (less(hi, i)) hi = i;
    }
    is_outlier_[lo] = 1;
    is_outlier_[hi] = 1;
  } else if (k > 0) {
    std::nth_element(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(k), order_.end(), less);
    std::nth_element(order_.begin() + static_cast<std::ptrdiff_t>(k),
                     order_.end() - static_cast<std::ptrdiff_t>(k), order_.end(), less);
    for (std::size_t j = 0; j < k; ++j) {
      is_outlier_[order_[j]] = 1;
      is_outlier_[order_[m - 1 - j]] = 1;
    }
  }

  GroupAnalysis& a = analysis_;
  a.outliers.clear();
  float lo = 0.0f, hi = 0.0f;
  bool any = false;
  for (std::size_t i = 0; i < n; ++i) {
    if (is_outlier_[i]) {
      a.outliers.push_back({static_cast<std::uint32_t>(i), values[i]});
    } else if (!any) {
      lo = hi = values[i];
      any = true;
    } else {
      lo = std::min(lo, values[i]);
      hi = std::max(hi, values[i]);
    }
  }
  // §3 metadata: min rounded down, max rounded up, so [min, max] still holds every value.
  a.meta.min_fp16 = FloatToFp16(lo, Fp16Rounding::kDown);
  a.meta.max_fp16 = FloatToFp16(hi, Fp16Rounding::kUp);
  a.min = Fp16ToFloat(a.meta.min_fp16);
  a.max = Fp16ToFloat(a.meta.max_fp16);
  return a;
}

void GroupQuantizer::PackCodesTo(std::span<const float> values, int bits, std::uint8_t* codes) {
  QAQ_CHECK(IsValidBits(bits), "bit width {}", bits);
  const std::size_t n = values.size();
  if (bits == kPassThroughBits) {
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint16_t h = Fp16Representable(values[i]) ? FloatToFp16(values[i]) : 0;
      std::memcpy(codes + 2 * i, &h, 2);
    }
    return;
  }
  QAQ_CHECK(n == is_outlier_.size(), "Pack after Analyze of {} values, got {}", is_outlier_.size(), n);
  if (bits == 0) return;
  const AffineMeta m = AffineFromMeta(analysis_.meta, bits);
  const int max_code = (1 << bits) - 1;
  const float inv_scale = m.scale > 0.0f ? 1.0f / m.scale : 0.0f;
  codes_.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    int c = 0;
    if (!is_outlier_[i]) {
      // The nearest segment midpoint; clamping only catches float rounding at the two ends.
      c = static_cast<int>(std::nearbyint((values[i] - m.offset) * inv_scale));
      c = std::clamp(c, 0, max_code);
    }
    codes_[i] = static_cast<std::uint8_t>(c);
  }
  PackCodes(codes_, bits, codes);
}

PackedGroup GroupQuantizer::Pack(std::span<const float> values, int bits) {
  PackedGroup g;
  g.bits = bits;
  g.size = static_cast<int>(values.size());
  g.codes.resize(BytesFor(values.size(), bits));
  PackCodesTo(values, bits, g.codes.data());
  if (bits == kPassThroughBits) {
    g.outliers = PassThroughOutliers(values);
  } else {
    g.meta = analysis_.meta;
    g.outliers = analysis_.outliers;
  }
  return g;
}

std::vector<Outlier> PassThroughOutliers(std::span<const float> values) {
  std::vector<Outlier> out;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!Fp16Representable(values[i])) out.push_back({static_cast<std::uint32_t>(i), values[i]});
  }
  return out;
}

StatusOr<PackedGroup> EncodeGroup(std::span<const float> values, int bits, double outlier_alpha) {
  if (!IsValidBits(bits)) return InvalidArgumentError("bit width {} is not 0..8 or 16", bits);
  if (!(outlier_alpha >= 0.0 && outlier_alpha < 1.0)) {
    return InvalidArgumentError("outlier ratio {} is not in [0, 1)", outlier_alpha);
  }
  if (values.size() >= (std::size_t{1} << 31)) {
    return OutOfRangeError("group of {} values is too large", values.size());
  }
  GroupQuantizer quantizer(outlier_alpha);
  quantizer.Analyze(values);
  return quantizer.Pack(values, bits);
}

void DecodeGroup(const PackedGroup& group, std::span<float> out) {
  QAQ_CHECK(out.size() == static_cast<std::size_t>(group.size), "decode {} into {}", group.size, out.size());
  const std::size_t n = out.size();
  if (group.bits == kPassThroughBits) {
    for (std::size_t i = 0; i < n; ++i) {
      std::uint16_t h;
      std::memcpy(&h, group.codes.data() + 2 * i, 2);
      out[i] = Fp16ToFloat(h);
    }
  } else {
    const AffineMeta m = AffineFromMeta(group.meta, group.bits);
    for (std::size_t i = 0; i < n; ++i) {
      const unsigned c = group.bits == 0 ? 0 : internal::ReadCode(group.codes.data(), group.bits, i);
      out[i] = m.offset + m.scale * static_cast<float>(c);
    }
  }
  for (const Outlier& o : group.outliers) out[o.index] = o.value;
}

float GroupDot(std::span<const float> q, const PackedGroup& group) {
  QAQ_CHECK(q.size() == static_cast<std::size_t>(group.size), "dot of {} with {}", q.size(), group.size);
  const AffineMeta m = AffineFromMeta(group.meta, group.bits);
  float q_sum = 0.0f;
  for (float v : q) q_sum += v;
  return DotPacked(q.data(), q_sum, group.codes.data(), group.bits, m, group.size) +
         OutlierDot(q.data(), group.outliers, group.bits, m);
}

void GroupAxpy(float w, const PackedGroup& group, std::span<float> out) {
  QAQ_CHECK(out.size() == static_cast<std::size_t>(group.size), "axpy of {} into {}", group.size, out.size());
  const AffineMeta m = AffineFromMeta(group.meta, group.bits);
  AxpyPacked(w, group.codes.data(), group.bits, m, group.size, out.data());
  OutlierAxpy(w, group.outliers, group.bits, m, out.data());
}

float OutlierDot(const float* q, std::span<const Outlier> outliers, int bits, AffineMeta m) {
  const float base = bits == kPassThroughBits ? 0.0f : m.offset;  // dequant(code 0)
  float sum = 0.0f;
  for (const Outlier& o : outliers) sum += q[o.index] * (o.value - base);
  return sum;
}

void OutlierAxpy(float w, std::span<const Outlier> outliers, int bits, AffineMeta m, float* out) {
  const float base = bits == kPassThroughBits ? 0.0f : m.offset;
  for (const Outlier& o : outliers) out[o.index] += w * (o.value - base);
}

}  // namespace qaq
