// A vector of small non-negative integers stored in 2 bytes each when every value fits (token
// numbers of a context up to 65535 tokens, positions inside a group up to 65536 values), else
// in 4. The cache's per-token tables are made of these, so their size is what memory accounting
// reports: 2 bytes per entry on every model whose context fits in 16 bits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/check.h"

namespace qaq::internal {

class IndexVector {
 public:
  IndexVector() = default;
  // Every value stored will be <= max_value.
  explicit IndexVector(std::uint64_t max_value) : width_(max_value <= 0xFFFF ? 2 : 4) {}

  int width() const { return width_; }
  std::size_t size() const { return bytes_.size() / std::size_t(width_); }
  std::size_t bytes() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }

  std::uint32_t operator[](std::size_t i) const {
    if (width_ == 2) {
      std::uint16_t v;
      std::memcpy(&v, &bytes_[i * 2], 2);
      return v;
    }
    std::uint32_t v;
    std::memcpy(&v, &bytes_[i * 4], 4);
    return v;
  }
  void Set(std::size_t i, std::uint32_t v) {
    if (width_ == 2) {
      QAQ_DCHECK(v <= 0xFFFF);
      const auto v16 = static_cast<std::uint16_t>(v);
      std::memcpy(&bytes_[i * 2], &v16, 2);
    } else {
      std::memcpy(&bytes_[i * 4], &v, 4);
    }
  }
  void PushBack(std::uint32_t v) {
    bytes_.resize(bytes_.size() + std::size_t(width_));
    Set(size() - 1, v);
  }
  void Resize(std::size_t n) { bytes_.resize(n * std::size_t(width_)); }
  // Removes entry i by moving the last one into its place.
  void SwapRemove(std::size_t i) {
    const std::size_t last = size() - 1;
    if (i != last) Set(i, (*this)[last]);
    Resize(last);
  }
  void Clear() { bytes_.clear(); }

  // Calls fn(p) with p pointing to the entries as std::uint16_t or std::uint32_t (for loops
  // that should not test the width at every entry).
  template <typename Fn>
  void Visit(Fn fn) const {
    if (width_ == 2) {
      fn(reinterpret_cast<const std::uint16_t*>(bytes_.data()));
    } else {
      fn(reinterpret_cast<const std::uint32_t*>(bytes_.data()));
    }
  }

  // dst[i] = src[(*this)[i]] for i < size(), or 0 where the index is >= limit.
  void Gather(const float* src, std::uint32_t limit, float* dst) const {
    if (width_ == 2) {
      GatherT(reinterpret_cast<const std::uint16_t*>(bytes_.data()), src, limit, dst);
    } else {
      GatherT(reinterpret_cast<const std::uint32_t*>(bytes_.data()), src, limit, dst);
    }
  }
  // dst[(*this)[i]] = src[i] for the i whose index is < limit.
  void Scatter(const float* src, std::uint32_t limit, float* dst) const {
    if (width_ == 2) {
      ScatterT(reinterpret_cast<const std::uint16_t*>(bytes_.data()), src, limit, dst);
    } else {
      ScatterT(reinterpret_cast<const std::uint32_t*>(bytes_.data()), src, limit, dst);
    }
  }

 private:
  template <typename T>
  void GatherT(const T* index, const float* src, std::uint32_t limit, float* dst) const {
    const std::size_t n = size();
    for (std::size_t i = 0; i < n; ++i) dst[i] = index[i] < limit ? src[index[i]] : 0.0f;
  }
  template <typename T>
  void ScatterT(const T* index, const float* src, std::uint32_t limit, float* dst) const {
    const std::size_t n = size();
    for (std::size_t i = 0; i < n; ++i) {
      if (index[i] < limit) dst[index[i]] = src[i];
    }
  }

  int width_ = 4;
  std::vector<std::uint8_t> bytes_;  // vector<uint8_t> storage is aligned for 2- and 4-byte loads
};

}  // namespace qaq::internal
