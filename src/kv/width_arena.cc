#include "kv/width_arena.h"

#include <algorithm>
#include <cstring>

#include "kernels/attention.h"
#include "quant/fp16.h"

namespace qaq::internal {

WidthArena::WidthArena(int bits, const ArenaGeometry& geometry)
    : bits_(bits),
      geometry_(geometry),
      row_bytes_(BytesFor(std::size_t(geometry.head_dim), bits)),
      tokens_(std::uint64_t(geometry.max_tokens)),
      planes_(std::size_t(geometry.n_planes)),
      outlier_index_(std::uint64_t(geometry.group_size()) - 1) {
  QAQ_CHECK(IsValidBits(bits), "bit width {}", bits);
  QAQ_CHECK(geometry.n_planes >= 1 && geometry.head_dim >= 1 && geometry.head_dim % 8 == 0,
            "arena of {} planes x {} values", geometry.n_planes, geometry.head_dim);
}

std::size_t WidthArena::PlaneBytesFor(std::size_t slots) const {
  if (bits_ == kPassThroughBits && geometry_.blocked_fp16) {
    const std::size_t blocks = (slots + kKeyBlock - 1) / kKeyBlock;
    return blocks * kKeyBlock * row_bytes_;
  }
  return slots * row_bytes_;
}

void WidthArena::SetMeta(std::size_t slot, GroupMeta meta) {
  metas_[slot] = meta;
  ranges_[slot] = Fp16ToFloat(meta.max_fp16) - Fp16ToFloat(meta.min_fp16);
}

std::size_t WidthArena::Add(std::uint32_t token) {
  const std::size_t slot = size();
  tokens_.PushBack(token);
  const std::size_t plane_bytes = PlaneBytesFor(slot + 1);
  for (auto& plane : planes_) plane.resize(plane_bytes);
  if (bits_ != kPassThroughBits) {
    metas_.emplace_back();
    ranges_.push_back(0.0f);
    const std::size_t k = std::size_t(geometry_.outliers_per_group);
    outlier_index_.Resize((slot + 1) * k);
    outlier_value_.resize((slot + 1) * k);
  }
  return slot;
}

void WidthArena::SwapRemove(std::size_t slot) {
  QAQ_DCHECK(slot < size());
  const std::size_t last = size() - 1;
  if (slot != last) {
    for (int p = 0; p < geometry_.n_planes; ++p) {
      if (bits_ == kPassThroughBits && geometry_.blocked_fp16) {
        for (int d = 0; d < geometry_.head_dim; ++d) SetFp16(p, slot, d, Fp16(p, last, d));
      } else {
        std::memcpy(Row(p, slot), Row(p, last), row_bytes_);
      }
    }
    if (bits_ != kPassThroughBits) {
      metas_[slot] = metas_[last];
      ranges_[slot] = ranges_[last];
      const std::size_t k = std::size_t(geometry_.outliers_per_group);
      for (std::size_t j = 0; j < k; ++j) {
        outlier_index_.Set(slot * k + j, outlier_index_[last * k + j]);
        outlier_value_[slot * k + j] = outlier_value_[last * k + j];
      }
    }
  }
  tokens_.SwapRemove(slot);
  const std::size_t plane_bytes = PlaneBytesFor(last);
  for (auto& plane : planes_) plane.resize(plane_bytes);
  if (bits_ != kPassThroughBits) {
    metas_.pop_back();
    ranges_.pop_back();
    const std::size_t k = std::size_t(geometry_.outliers_per_group);
    outlier_index_.Resize(last * k);
    outlier_value_.resize(last * k);
  }
}

void WidthArena::Clear() {
  tokens_.Clear();
  for (auto& plane : planes_) plane.clear();
  metas_.clear();
  ranges_.clear();
  outlier_index_.Clear();
  outlier_value_.clear();
}

std::uint16_t WidthArena::Fp16(int p, std::size_t slot, int d) const {
  QAQ_DCHECK(bits_ == kPassThroughBits);
  const std::size_t i = geometry_.blocked_fp16 ? BlockedKeyIndex(std::int64_t(slot), d, geometry_.head_dim)
                                               : slot * std::size_t(geometry_.head_dim) + std::size_t(d);
  return fp16_plane(p)[i];
}

void WidthArena::SetFp16(int p, std::size_t slot, int d, std::uint16_t h) {
  QAQ_DCHECK(bits_ == kPassThroughBits);
  const std::size_t i = geometry_.blocked_fp16 ? BlockedKeyIndex(std::int64_t(slot), d, geometry_.head_dim)
                                               : slot * std::size_t(geometry_.head_dim) + std::size_t(d);
  std::memcpy(planes_[std::size_t(p)].data() + 2 * i, &h, 2);
}

void WidthArena::SetOutliers(std::size_t slot, const std::vector<Outlier>& outliers) {
  QAQ_CHECK(int(outliers.size()) == outliers_per_group(), "{} outliers in a group that holds {}",
            outliers.size(), outliers_per_group());
  const std::size_t k = outliers.size();
  // Stored by position, so that the outliers of one plane are a contiguous run of the slot's.
  thread_local std::vector<Outlier> sorted;
  sorted.assign(outliers.begin(), outliers.end());
  std::sort(sorted.begin(), sorted.end(), [](const Outlier& a, const Outlier& b) { return a.index < b.index; });
  for (std::size_t j = 0; j < k; ++j) {
    outlier_index_.Set(slot * k + j, sorted[j].index);
    outlier_value_[slot * k + j] = sorted[j].value;
  }
}

}  // namespace qaq::internal
