// A KV cache that records what passes through attention, for `qaq calibrate` and `qaq dump`.
//
// RecordingCache wraps an inner cache (fp32 unless told otherwise), forwards every call to it
// unchanged, and keeps a copy of what it sees:
//   keys    as appended (before RoPE) and rotated exactly as the fp32 cache rotates them,
//   values  as appended,
//   queries the rotated query multiplied by the softmax scale, as Scores receives it: q~ of
//           QAQ-method.md "Notation",
//   |q~|^2  of every query head, grouped by the KV head it reads (§2 calibrates these),
//   probs   every softmax row ObserveAttention reports.
// What is kept is chosen by RecordOptions: calibration needs only the query norms (one number
// per query head and position), a dump everything. The records mirror the cache: Truncate drops
// the recorded positions too, so a caller harvests them before starting a new sequence.
//
//   auto recorder = std::make_unique<qaq::RecordingCache>(std::move(fp32), qaq::RecordOptions::Everything());
//   qaq::RecordingCache* rec = recorder.get();
//   QAQ_ASSIGN_OR_RETURN(qaq::Session s, qaq::Session::Create(model, std::move(recorder), 1));
//   QAQ_RETURN_IF_ERROR(s.Prefill(tokens).status());
//   std::vector<float> k = rec->KeysTensor(/*rotated=*/true);   // [L][Hkv][T][D]
//
// Assumptions about the caller (the engine in src/model meets them): attention is causal, so a
// Scores call over n tokens belongs to the query at position n - 1; Scores runs once per query
// head and position; ObserveAttention follows, for every query head, before the next position.
// The interface does not say which query head a Scores call is for. Queries are paired with
// their head through the row buffer: the engine computes the softmax in place, so the row
// ObserveAttention receives lies where Scores wrote the scores. If a caller used different
// buffers, the query whose softmax(scores) is closest to the observed row is taken instead (first
// come on ties, which happen at position 0 where every row is [1]); n_paired_by_content() counts
// those. Query norms need no pairing (the maximum over a group does not depend on the order).
//
// Threads: Scores may run concurrently (it takes a mutex to record); the other calls come from
// one thread, as kv_cache.h specifies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/rope.h"
#include "qaq/kv_cache.h"
#include "qaq/status.h"

namespace qaq {

struct RecordOptions {
  bool query_norms = true;  // |q~|^2 per query head and position
  bool keys = false;        // K before and after RoPE
  bool values = false;
  bool queries = false;     // q~ per query head and position
  bool attention = false;   // softmax rows per query head and position (T^2 / 2 floats per head)

  static RecordOptions QueryNormsOnly() { return {}; }
  static RecordOptions Everything() { return {true, true, true, true, true}; }
};

// How the query heads that share a KV head become |q~|^2 samples of that KV head.
enum class QueryHeadReduction {
  kMax,   // one sample per position: the maximum over the group (QAQ-method.md "Notation")
  kEach,  // one sample per query head and position
};

class RecordingCache final : public KvCache {
 public:
  // Records around `inner` (not null); the recorder has the inner cache's shape.
  RecordingCache(std::unique_ptr<KvCache> inner, RecordOptions options);
  // Makes the inner cache from a MakeKvCache spec ("fp32", "fp16", ...).
  static StatusOr<std::unique_ptr<RecordingCache>> Create(std::string_view inner_spec, const KvCacheShape& shape,
                                                          RecordOptions options);

  // KvCache: everything is forwarded to the inner cache.
  std::string name() const override { return inner_->name(); }
  const KvCacheShape& shape() const override { return inner_->shape(); }
  void Append(int layer, int pos, std::span<const float> k, std::span<const float> v) override;
  void Scores(int layer, int kv_head, std::span<const float> q, std::span<float> scores) const override;
  void WeightedSum(int layer, int kv_head, std::span<const float> probs, std::span<float> out) const override;
  void ObserveAttention(int layer, int q_head, int query_pos, std::span<const float> probs) override;
  void EndStep() override;
  int n_tokens() const override { return inner_->n_tokens(); }
  void Truncate(int n) override;
  KvMemory Memory() const override { return inner_->Memory(); }
  std::string Summary() const override { return inner_->Summary(); }

  const KvCache& inner() const { return *inner_; }
  const RecordOptions& options() const { return options_; }

  // Positions recorded in `layer` (n_tokens() after a complete forward pass).
  int n_positions(int layer) const { return n_positions_[std::size_t(layer)]; }

  // §2: the |q~|^2 samples of (layer, kv_head) over the recorded positions whose queries were
  // scored, in position order (kEach: the group's heads in the order they were scored).
  // Needs options().query_norms.
  std::vector<double> QueryNormSamples(int layer, int kv_head, QueryHeadReduction reduction) const;

  // One recorded vector of head_dim floats, for t < n_positions(layer).
  std::span<const float> Key(int layer, int kv_head, int t, bool rotated) const;  // needs keys
  std::span<const float> Value(int layer, int kv_head, int t) const;              // needs values
  std::span<const float> Query(int layer, int q_head, int t) const;               // needs queries
  // The softmax row of q_head at position t: t + 1 floats. Needs attention.
  std::span<const float> AttentionRow(int layer, int q_head, int t) const;

  // Whole tensors over T = n_tokens() positions (every layer must hold T), C order, as `qaq dump`
  // writes them:
  std::vector<float> KeysTensor(bool rotated) const;  // [n_layers, n_kv_heads, T, head_dim]
  std::vector<float> ValuesTensor() const;            // [n_layers, n_kv_heads, T, head_dim]
  std::vector<float> QueriesTensor() const;           // [n_layers, n_heads, T, head_dim]
  std::vector<float> AttentionTensor() const;         // [n_layers, n_heads, T, T], 0 above the diagonal

  // Scored queries that no ObserveAttention row claimed (0 when the caller meets the
  // assumptions above), and queries paired by content rather than by buffer.
  std::size_t n_unpaired_queries() const { return n_unpaired_; }
  std::size_t n_paired_by_content() const { return n_paired_by_content_; }

 private:
  // A scored query waiting for its ObserveAttention row, which names its head.
  struct PendingQuery {
    int layer = 0, kv_head = 0, pos = 0;
    const float* row = nullptr;  // where Scores wrote the scores
    std::vector<float> q;        // [head_dim]
    std::vector<float> scores;   // [pos + 1], for pairing by content
  };

  std::size_t Slot(int layer, int kv_head) const {
    return std::size_t(layer) * std::size_t(shape().n_kv_heads) + std::size_t(kv_head);
  }
  int group() const { return shape().n_heads / shape().n_kv_heads; }
  // Index of the pending query that produced the softmax row `probs`.
  std::size_t PairQuery(int layer, int kv_head, int pos, std::span<const float> probs);

  std::unique_ptr<KvCache> inner_;
  RecordOptions options_;
  internal::RopeTable rope_;
  std::vector<int> n_positions_;                  // [n_layers]
  // Per layer, grown on Append:
  std::vector<std::vector<float>> keys_;          // [T][n_kv_heads][head_dim], before RoPE
  std::vector<std::vector<float>> rotated_keys_;  // [T][n_kv_heads][head_dim]
  std::vector<std::vector<float>> values_;        // [T][n_kv_heads][head_dim]
  std::vector<std::vector<float>> queries_;       // [T][n_heads][head_dim]
  // Per (layer, query head): row t at t (t + 1) / 2, t + 1 floats.
  std::vector<std::vector<float>> attention_;
  // Per (layer, KV head), written by Scores under mutex_:
  mutable std::vector<std::vector<double>> q_norms_;        // [T][group], in the order scored
  mutable std::vector<std::vector<std::uint8_t>> n_norms_;  // [T]: entries filled
  mutable std::vector<PendingQuery> pending_;
  mutable std::mutex mutex_;
  std::size_t n_unpaired_ = 0;
  std::size_t n_paired_by_content_ = 0;
};

}  // namespace qaq
