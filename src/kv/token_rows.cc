#include "kv/token_rows.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <utility>

#include "core/check.h"
#include "kernels/attention.h"
#include "kernels/half.h"
#include "quant/fp16.h"
#include "quant/split_int8_rows.h"

namespace qaq::internal {
namespace {

// Per-thread scratch for the attention calls (Scores and WeightedSum run concurrently for
// different heads).
struct AttentionScratch {
  std::vector<float> results;        // [slot]
  std::vector<float> weights;        // [slot]
  std::vector<AffineMeta> affine;    // [slot]
  std::vector<float> rotated_q;      // [head_dim]
};

AttentionScratch& Scratch() {
  thread_local AttentionScratch scratch;
  return scratch;
}

// Slots at the end of an arena whose tokens the call does not cover (a prefill batch asks for
// fewer tokens than are stored) are left out, so that an arena in token order runs exactly the
// loop an fp16 cache runs.
std::size_t RowsToVisit(const WidthArena& arena, std::uint32_t n_tokens) {
  std::size_t rows = arena.size();
  while (rows > 0 && arena.token(rows - 1) >= n_tokens) --rows;
  return rows;
}

float Sum(const float* x, int n) {
  float s = 0.0f;
  for (int i = 0; i < n; ++i) s += x[i];
  return s;
}

// Up to this many outliers per group, a plane's own are found by testing each (cheaper than two
// binary searches); with more, by binary search in the sorted run.
constexpr std::size_t kLinearOutlierScan = 16;

// The run [begin, end) of a slot's k outliers (sorted by position) that lies in [lo, lo + span).
template <typename T>
std::pair<std::size_t, std::size_t> PlaneRun(const T* index, std::size_t k, std::uint32_t lo, std::uint32_t span) {
  const T* begin = std::lower_bound(index, index + k, lo);
  const T* end = std::lower_bound(begin, index + k, lo + span);
  return {std::size_t(begin - index), std::size_t(end - index)};
}

// Calls fn(d, j) for each outlier j of a row (positions ir[0..k), sorted) that lies in the plane
// [lo, lo + span), d its position inside the plane. One plane holds every outlier; with several,
// a plane's own are found by testing each (up to kLinearOutlierScan) or by binary search.
template <typename T, typename Fn>
inline void ForPlaneOutliers(const T* ir, std::size_t k, bool one_plane, std::uint32_t lo, std::uint32_t span,
                             const Fn& fn) {
  if (one_plane) {
    for (std::size_t j = 0; j < k; ++j) fn(std::uint32_t(ir[j]) - lo, j);
  } else if (k <= kLinearOutlierScan) {
    for (std::size_t j = 0; j < k; ++j) {
      const std::uint32_t d = std::uint32_t(ir[j]) - lo;  // wraps for positions below the plane
      if (d < span) fn(d, j);
    }
  } else {
    const auto [begin, end] = PlaneRun(ir, k, lo, span);
    for (std::size_t j = begin; j < end; ++j) fn(std::uint32_t(ir[j]) - lo, j);
  }
}

// OutlierDot's correction for rows [first, first + n_rows): an outlier's position holds code 0,
// reconstructed as the offset, so the exact value adds q_i (value - offset); only the outliers
// of `plane` count (ForPlaneOutliers). The outlier table is read through raw pointers (no width
// test per entry). affine and results are indexed from `first`.
void AddOutlierDots(const WidthArena& arena, int n_planes, int plane, int head_dim, std::size_t first,
                    std::size_t n_rows, const float* q, const AffineMeta* affine, float* results) {
  const auto k = std::size_t(arena.outliers_per_group());
  if (k == 0) return;
  const float* values = arena.outlier_values();
  const std::uint32_t lo = std::uint32_t(plane * head_dim), span = std::uint32_t(head_dim);
  const bool one_plane = n_planes == 1;
  arena.outlier_indices().Visit([&](const auto* index) {
    for (std::size_t r = 0; r < n_rows; ++r) {
      const auto* ir = index + (first + r) * k;
      const float* vr = values + (first + r) * k;
      const float offset = affine[r].offset;
      float result = results[r];
      ForPlaneOutliers(ir, k, one_plane, lo, span, [&](std::uint32_t d, std::size_t j) { result += q[d] * (vr[j] - offset); });
      results[r] = result;
    }
  });
}

// OutlierAxpy's correction: out[i] += w_r (value - offset) for each outlier of `plane` in rows
// < n_rows (found as in AddOutlierDots).
void AddOutlierAxpys(const WidthArena& arena, int n_planes, int plane, int head_dim, std::size_t n_rows, const float* w,
                     const AffineMeta* affine, float* out) {
  const auto k = std::size_t(arena.outliers_per_group());
  if (k == 0) return;
  const float* values = arena.outlier_values();
  const std::uint32_t lo = std::uint32_t(plane * head_dim), span = std::uint32_t(head_dim);
  const bool one_plane = n_planes == 1;
  arena.outlier_indices().Visit([&](const auto* index) {
    if (one_plane && k == 2) {
      // The usual case (alpha = 1% of 128 values: one outlier per side), without a loop per row.
      for (std::size_t r = 0; r < n_rows; ++r) {
        const float wr = w[r], offset = affine[r].offset;
        out[index[2 * r]] += wr * (values[2 * r] - offset);
        out[index[2 * r + 1]] += wr * (values[2 * r + 1] - offset);
      }
      return;
    }
    for (std::size_t r = 0; r < n_rows; ++r) {
      const float wr = w[r];
      const auto* ir = index + r * k;
      const float* vr = values + r * k;
      const float offset = affine[r].offset;
      ForPlaneOutliers(ir, k, one_plane, lo, span, [&](std::uint32_t d, std::size_t j) { out[d] += wr * (vr[j] - offset); });
    }
  });
}

// An arena's share of WeightedSum in one pass of the integer kernel (WeightedSumSplitInt8), where
// it applies: one plane per unit (each row's outliers are all this head's) with 16-bit outlier
// positions. False, writing nothing, elsewhere.
bool WeightedSumInPlace(const WidthArena& arena, int n_planes, std::size_t rows, std::span<const float> probs,
                        int head_dim, float* out) {
  const int k = arena.outliers_per_group();
  if (n_planes != 1 || (k > 0 && arena.outlier_indices().width() != 2)) return false;
  WeightedRows in;
  in.probs = probs.data();
  in.n_probs = std::uint32_t(probs.size());
  arena.tokens().Visit([&](const auto* tokens) {
    if constexpr (sizeof(*tokens) == 2) {
      in.tokens16 = tokens;
    } else {
      in.tokens32 = tokens;
    }
  });
  in.metas = arena.metas();
  in.codes = arena.plane(0);
  in.row_bytes = arena.row_bytes();
  in.n_rows = int(rows);
  in.bits = arena.bits();
  in.n = head_dim;
  in.outliers = k;
  if (k > 0) {
    arena.outlier_indices().Visit([&](const auto* index) {
      if constexpr (sizeof(*index) == 2) in.outlier_index = index;
    });
    in.outlier_values = arena.outlier_values();
  }
  return WeightedSumSplitInt8(in, out);
}

}  // namespace

TokenRows::TokenRows(const KvCacheShape& shape, KvKind kind, Granularity granularity, double outlier_alpha,
                     bool prerope, const RopeRotator* rotator)
    : shape_(shape), kind_(kind), granularity_(granularity), prerope_(prerope), rotator_(rotator) {
  QAQ_CHECK(!prerope || (kind == KvKind::kKey && rotator != nullptr));
  switch (granularity) {
    case Granularity::kHead: n_units_ = shape.n_layers * shape.n_kv_heads, planes_ = 1; break;
    case Granularity::kLayer: n_units_ = shape.n_layers, planes_ = shape.n_kv_heads; break;
    case Granularity::kToken: n_units_ = 1, planes_ = shape.n_layers * shape.n_kv_heads; break;
  }
  geometry_.n_planes = planes_;
  geometry_.head_dim = shape.head_dim;
  geometry_.outliers_per_group = 2 * OutliersPerSide(std::size_t(group_size()), outlier_alpha);
  geometry_.max_tokens = shape.max_tokens;
  geometry_.blocked_fp16 = kind == KvKind::kKey;
  arenas_.resize(std::size_t(n_units_) * kArenaSlots);
  appended_.assign(std::size_t(n_units_), 0);
}

int TokenRows::UnitOf(int layer, int kv_head) const {
  switch (granularity_) {
    case Granularity::kHead: return layer * shape_.n_kv_heads + kv_head;
    case Granularity::kLayer: return layer;
    case Granularity::kToken: break;
  }
  return 0;
}

int TokenRows::PlaneOf(int layer, int kv_head) const {
  switch (granularity_) {
    case Granularity::kHead: return 0;
    case Granularity::kLayer: return kv_head;
    case Granularity::kToken: break;
  }
  return layer * shape_.n_kv_heads + kv_head;
}

void TokenRows::PairOf(int unit, int plane, int* layer, int* kv_head) const {
  switch (granularity_) {
    case Granularity::kHead:
      *layer = unit / shape_.n_kv_heads, *kv_head = unit % shape_.n_kv_heads;
      return;
    case Granularity::kLayer:
      *layer = unit, *kv_head = plane;
      return;
    case Granularity::kToken: break;
  }
  *layer = plane / shape_.n_kv_heads, *kv_head = plane % shape_.n_kv_heads;
}

WidthArena& TokenRows::GetArena(int unit, int bits) {
  std::unique_ptr<WidthArena>& a = arenas_[Index(unit, ArenaIndex(bits))];
  if (a == nullptr) a = std::make_unique<WidthArena>(bits, geometry_);
  return *a;
}

void TokenRows::Append(int layer, int kv_head, int pos, const float* row) {
  const int unit = UnitOf(layer, kv_head);
  WidthArena& fp16 = GetArena(unit, kPassThroughBits);
  int& appended = appended_[std::size_t(unit)];
  // The tokens appended since the last re-quantization are the arena's last slots, in order;
  // the first plane of a unit to see a position makes its slot.
  if (pos == appended) {
    fp16.Add(std::uint32_t(pos));
    ++appended;
  }
  QAQ_CHECK(pos < appended && std::size_t(appended - pos) <= fp16.size(), "append of position {} to a unit holding {}",
            pos, appended);
  const std::size_t slot = fp16.size() - std::size_t(appended - pos);
  QAQ_DCHECK(fp16.token(slot) == std::uint32_t(pos));
  const int plane = PlaneOf(layer, kv_head);
  for (int d = 0; d < shape_.head_dim; ++d) fp16.SetFp16(plane, slot, d, FloatToFp16(row[d]));
}

void TokenRows::Scores(int layer, int kv_head, std::span<const float> q, std::span<float> scores) const {
  const int unit = UnitOf(layer, kv_head), plane = PlaneOf(layer, kv_head), head_dim = shape_.head_dim;
  const auto n = std::uint32_t(scores.size());
  AttentionScratch& s = Scratch();
  const float q_sum = Sum(q.data(), head_dim);
  for (int a = 0; a < kArenaSlots; ++a) {
    const WidthArena* arena = arenas_[Index(unit, a)].get();
    if (arena == nullptr) continue;
    const std::size_t rows = RowsToVisit(*arena, n);
    if (rows == 0) continue;
    const int bits = arena->bits();
    s.results.resize(rows);
    if (bits == kPassThroughBits) {
      ScoresF16(arena->fp16_plane(plane), std::int64_t(rows), head_dim, q.data(), s.results.data());
    } else {
      s.affine.resize(rows);
      AffineFromMetas(arena->metas(), rows, bits, s.affine.data());
      if (prerope_) {
        s.rotated_q.resize(std::size_t(head_dim));
        for (std::size_t r = 0; r < rows; ++r) {
          // q . R_t k = (R_t^T q) . k: the stored key is before RoPE.
          rotator_->Unrotate(q.data(), int(arena->token(r)), s.rotated_q.data());
          const float* qr = s.rotated_q.data();
          s.results[r] = DotPacked(qr, Sum(qr, head_dim), arena->Row(plane, r), bits, s.affine[r], head_dim);
          AddOutlierDots(*arena, planes_, plane, head_dim, r, 1, qr, &s.affine[r], &s.results[r]);
        }
      } else {
        DotPackedRows(q.data(), q_sum, arena->plane(plane), arena->row_bytes(), s.affine.data(), int(rows), bits,
                      head_dim, s.results.data());
        AddOutlierDots(*arena, planes_, plane, head_dim, 0, rows, q.data(), s.affine.data(), s.results.data());
      }
    }
    s.results.resize(arena->size());  // slots past `rows` are not written: Scatter skips them by token
    arena->tokens().Scatter(s.results.data(), n, scores.data());
  }
}

void TokenRows::WeightedSum(int layer, int kv_head, std::span<const float> probs, std::span<float> out) const {
  const int unit = UnitOf(layer, kv_head), plane = PlaneOf(layer, kv_head), head_dim = shape_.head_dim;
  const auto n = std::uint32_t(probs.size());
  AttentionScratch& s = Scratch();
  for (int a = 0; a < kArenaSlots; ++a) {
    const WidthArena* arena = arenas_[Index(unit, a)].get();
    if (arena == nullptr) continue;
    const std::size_t rows = RowsToVisit(*arena, n);
    if (rows == 0) continue;
    const int bits = arena->bits();
    if (bits != kPassThroughBits && WeightedSumInPlace(*arena, planes_, rows, probs, head_dim, out.data())) continue;
    s.weights.resize(arena->size());
    arena->tokens().Gather(probs.data(), n, s.weights.data());
    if (bits == kPassThroughBits) {
      WeightedSumF16(arena->fp16_plane(plane), std::int64_t(rows), head_dim, s.weights.data(), out.data());
      continue;
    }
    s.affine.resize(rows);
    AffineFromMetas(arena->metas(), rows, bits, s.affine.data());
    AxpyPackedRows(s.weights.data(), arena->plane(plane), arena->row_bytes(), s.affine.data(), int(rows), bits,
                   head_dim, out.data());
    AddOutlierAxpys(*arena, planes_, plane, head_dim, rows, s.weights.data(), s.affine.data(), out.data());
  }
}

void TokenRows::ReadGroup(int unit, const WidthArena& arena, std::size_t slot, std::span<float> out) const {
  const int head_dim = shape_.head_dim;
  QAQ_CHECK(out.size() == std::size_t(group_size()));
  const int bits = arena.bits();
  if (bits == kPassThroughBits) {
    for (int p = 0; p < planes_; ++p) {
      float* row = out.data() + std::size_t(p) * std::size_t(head_dim);
      for (int d = 0; d < head_dim; ++d) row[d] = Fp16ToFloat(arena.Fp16(p, slot, d));
      if (prerope_) rotator_->Unrotate(row, int(arena.token(slot)), row);
    }
    return;
  }
  (void)unit;
  thread_local PackedGroup g;
  g.bits = bits;
  g.size = group_size();
  g.meta = arena.meta(slot);
  g.codes.resize(BytesFor(std::size_t(g.size), bits));
  // head_dim is a multiple of 8, so every plane's row starts on a byte of the group's stream.
  for (int p = 0; p < planes_; ++p) {
    std::memcpy(g.codes.data() + std::size_t(p) * arena.row_bytes(), arena.Row(p, slot), arena.row_bytes());
  }
  g.outliers.resize(std::size_t(arena.outliers_per_group()));
  for (int j = 0; j < arena.outliers_per_group(); ++j) {
    g.outliers[std::size_t(j)] = {arena.outlier_index(slot, j), arena.outlier_value(slot, j)};
  }
  DecodeGroup(g, out);
}

void TokenRows::StoreGroup(int unit, std::uint32_t token, int bits, std::span<const float> values,
                           GroupQuantizer& quantizer) {
  const int head_dim = shape_.head_dim;
  QAQ_CHECK(values.size() == std::size_t(group_size()));
  WidthArena& arena = GetArena(unit, bits);
  const std::size_t slot = arena.Add(token);
  if (bits == kPassThroughBits) {
    std::vector<float> row(static_cast<std::size_t>(head_dim));
    for (int p = 0; p < planes_; ++p) {
      const float* v = values.data() + std::size_t(p) * std::size_t(head_dim);
      if (prerope_) {
        rotator_->Rotate(v, int(token), row.data());
        v = row.data();
      }
      for (int d = 0; d < head_dim; ++d) arena.SetFp16(p, slot, d, FloatToFp16(v[d]));
    }
    return;
  }
  codes_scratch_.resize(BytesFor(values.size(), bits) + 8);
  quantizer.PackCodesTo(values, bits, codes_scratch_.data());
  for (int p = 0; p < planes_; ++p) {
    std::memcpy(arena.Row(p, slot), codes_scratch_.data() + std::size_t(p) * arena.row_bytes(), arena.row_bytes());
  }
  arena.SetMeta(slot, quantizer.analysis().meta);
  arena.SetOutliers(slot, quantizer.analysis().outliers);
}

void TokenRows::Truncate(int n) {
  for (int u = 0; u < n_units_; ++u) {
    for (int a = 0; a < kArenaSlots; ++a) {
      WidthArena* arena = arenas_[Index(u, a)].get();
      if (arena == nullptr) continue;
      for (std::size_t r = arena->size(); r-- > 0;) {
        if (arena->token(r) >= std::uint32_t(std::max(n, 0))) arena->SwapRemove(r);
      }
    }
    appended_[std::size_t(u)] = std::min(appended_[std::size_t(u)], std::max(n, 0));
  }
}

template <typename Bytes>
std::size_t TokenRows::SumOverArenas(Bytes bytes) const {
  std::size_t b = 0;
  for (const auto& a : arenas_) b += a ? bytes(*a) : 0;
  return b;
}

std::size_t TokenRows::code_bytes() const { return SumOverArenas(std::mem_fn(&WidthArena::code_bytes)); }
std::size_t TokenRows::metadata_bytes() const { return SumOverArenas(std::mem_fn(&WidthArena::metadata_bytes)); }
std::size_t TokenRows::outlier_bytes() const { return SumOverArenas(std::mem_fn(&WidthArena::outlier_bytes)); }
std::size_t TokenRows::table_bytes() const { return SumOverArenas(std::mem_fn(&WidthArena::table_bytes)); }

std::array<std::size_t, kArenaSlots> TokenRows::GroupsPerWidth() const {
  std::array<std::size_t, kArenaSlots> counts{};
  for (std::size_t i = 0; i < arenas_.size(); ++i) {
    if (arenas_[i]) counts[i % kArenaSlots] += arenas_[i]->size();
  }
  return counts;
}

}  // namespace qaq::internal
