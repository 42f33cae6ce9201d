#include "kv/recording_cache.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/check.h"

namespace qaq {
namespace {

// Largest |softmax(scores)[t] - probs[t]|, the softmax in double.
double SoftmaxDistance(std::span<const float> scores, std::span<const float> probs) {
  if (scores.size() != probs.size()) return std::numeric_limits<double>::infinity();
  const double max = *std::max_element(scores.begin(), scores.end());
  double sum = 0.0;
  for (float s : scores) sum += std::exp(double(s) - max);
  double worst = 0.0;
  for (std::size_t t = 0; t < scores.size(); ++t) {
    worst = std::max(worst, std::abs(std::exp(double(scores[t]) - max) / sum - double(probs[t])));
  }
  return worst;
}

std::size_t Triangle(std::size_t t) { return t * (t + 1) / 2; }

}  // namespace

RecordingCache::RecordingCache(std::unique_ptr<KvCache> inner, RecordOptions options)
    : inner_(std::move(inner)), options_(options) {
  QAQ_CHECK(inner_ != nullptr, "RecordingCache needs an inner cache");
  const KvCacheShape& s = inner_->shape();
  QAQ_CHECK(s.n_kv_heads > 0 && s.n_heads % s.n_kv_heads == 0 && s.n_heads / s.n_kv_heads <= 255,
            "query heads {} / KV heads {}", s.n_heads, s.n_kv_heads);
  if (options_.keys) rope_ = internal::RopeTable(s.rope_theta, s.rope_dim, s.max_tokens);
  const std::size_t layers = std::size_t(s.n_layers);
  n_positions_.assign(layers, 0);
  keys_.resize(layers);
  rotated_keys_.resize(layers);
  values_.resize(layers);
  queries_.resize(layers);
  attention_.resize(layers * std::size_t(s.n_heads));
  q_norms_.resize(layers * std::size_t(s.n_kv_heads));
  n_norms_.resize(q_norms_.size());
}

StatusOr<std::unique_ptr<RecordingCache>> RecordingCache::Create(std::string_view inner_spec,
                                                                 const KvCacheShape& shape, RecordOptions options) {
  QAQ_ASSIGN_OR_RETURN(std::unique_ptr<KvCache> inner, MakeKvCache(inner_spec, shape));
  return std::make_unique<RecordingCache>(std::move(inner), options);
}

void RecordingCache::Append(int layer, int pos, std::span<const float> k, std::span<const float> v) {
  inner_->Append(layer, pos, k, v);
  const KvCacheShape& s = shape();
  const std::size_t l = std::size_t(layer);
  QAQ_CHECK(pos == n_positions_[l], "layer {}: position {} recorded after {}", layer, pos, n_positions_[l]);
  const std::size_t head_dim = std::size_t(s.head_dim);
  if (options_.keys) {
    keys_[l].insert(keys_[l].end(), k.begin(), k.end());
    rotated_keys_[l].insert(rotated_keys_[l].end(), k.begin(), k.end());
    // The fp32 cache's rotation (kernels/rope.h), so rotated keys equal what it scores against.
    rope_.Apply(rotated_keys_[l].data() + std::size_t(pos) * k.size(), s.n_kv_heads, s.head_dim, pos);
  }
  if (options_.values) values_[l].insert(values_[l].end(), v.begin(), v.end());
  if (options_.queries) queries_[l].resize(std::size_t(pos + 1) * std::size_t(s.n_heads) * head_dim, 0.0f);
  if (options_.attention) {
    for (int h = 0; h < s.n_heads; ++h) {
      attention_[l * std::size_t(s.n_heads) + std::size_t(h)].resize(Triangle(std::size_t(pos) + 1), 0.0f);
    }
  }
  if (options_.query_norms) {
    for (int h = 0; h < s.n_kv_heads; ++h) {
      q_norms_[Slot(layer, h)].resize(std::size_t(pos + 1) * std::size_t(group()), 0.0);
      n_norms_[Slot(layer, h)].resize(std::size_t(pos + 1), 0);
    }
  }
  ++n_positions_[l];
}

void RecordingCache::Scores(int layer, int kv_head, std::span<const float> q, std::span<float> scores) const {
  inner_->Scores(layer, kv_head, q, scores);
  if (!options_.query_norms && !options_.queries) return;
  // Causal attention: the query at position p scores tokens 0..p.
  QAQ_CHECK(!scores.empty() && int(scores.size()) <= n_positions_[std::size_t(layer)],
            "layer {}: a query over {} tokens, {} recorded", layer, scores.size(), n_positions_[std::size_t(layer)]);
  const int pos = int(scores.size()) - 1;
  double norm_sq = 0.0;  // §2 |q~|^2: q arrives with the softmax scale applied
  for (float x : q) norm_sq += double(x) * double(x);

  std::lock_guard<std::mutex> lock(mutex_);
  if (options_.query_norms) {
    const std::size_t slot = Slot(layer, kv_head);
    std::uint8_t& filled = n_norms_[slot][std::size_t(pos)];
    QAQ_CHECK(filled < group(), "layer {} KV head {} position {}: more than {} queries scored", layer, kv_head, pos,
              group());
    q_norms_[slot][std::size_t(pos) * std::size_t(group()) + filled] = norm_sq;
    ++filled;
  }
  if (options_.queries) {
    pending_.push_back({layer, kv_head, pos, scores.data(), std::vector<float>(q.begin(), q.end()),
                        std::vector<float>(scores.begin(), scores.end())});
  }
}

void RecordingCache::WeightedSum(int layer, int kv_head, std::span<const float> probs, std::span<float> out) const {
  inner_->WeightedSum(layer, kv_head, probs, out);
}

std::size_t RecordingCache::PairQuery(int layer, int kv_head, int pos, std::span<const float> probs) {
  std::size_t best = pending_.size();
  double best_distance = std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < pending_.size(); ++i) {
    const PendingQuery& p = pending_[i];
    if (p.layer != layer || p.kv_head != kv_head || p.pos != pos) continue;
    if (p.row == probs.data()) return i;
    const double distance = SoftmaxDistance(p.scores, probs);
    if (best == pending_.size() || distance < best_distance) {
      best = i;
      best_distance = distance;
    }
  }
  if (best < pending_.size()) ++n_paired_by_content_;
  return best;
}

void RecordingCache::ObserveAttention(int layer, int q_head, int query_pos, std::span<const float> probs) {
  inner_->ObserveAttention(layer, q_head, query_pos, probs);
  const KvCacheShape& s = shape();
  const std::size_t l = std::size_t(layer);
  if (options_.attention) {
    QAQ_CHECK(query_pos < n_positions_[l] && probs.size() == std::size_t(query_pos) + 1,
              "layer {}: attention row of position {} over {} tokens (causal rows only)", layer, query_pos,
              probs.size());
    std::vector<float>& rows = attention_[l * std::size_t(s.n_heads) + std::size_t(q_head)];
    std::copy(probs.begin(), probs.end(), rows.begin() + std::ptrdiff_t(Triangle(std::size_t(query_pos))));
  }
  if (options_.queries) {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::size_t i = PairQuery(layer, q_head / group(), query_pos, probs);
    if (i < pending_.size()) {
      const std::size_t head_dim = std::size_t(s.head_dim);
      std::copy(pending_[i].q.begin(), pending_[i].q.end(),
                queries_[l].begin() +
                    std::ptrdiff_t((std::size_t(query_pos) * std::size_t(s.n_heads) + std::size_t(q_head)) * head_dim));
      if (i + 1 != pending_.size()) pending_[i] = std::move(pending_.back());
      pending_.pop_back();
    }
  }
}

void RecordingCache::EndStep() {
  inner_->EndStep();
  std::lock_guard<std::mutex> lock(mutex_);
  n_unpaired_ += pending_.size();
  pending_.clear();
}

void RecordingCache::Truncate(int n) {
  inner_->Truncate(n);
  const KvCacheShape& s = shape();
  const std::size_t kv_dim = std::size_t(s.n_kv_heads) * std::size_t(s.head_dim);
  const std::size_t q_dim = std::size_t(s.n_heads) * std::size_t(s.head_dim);
  for (std::size_t l = 0; l < n_positions_.size(); ++l) {
    const std::size_t t = std::size_t(std::min(n_positions_[l], n));
    n_positions_[l] = int(t);
    if (options_.keys) {
      keys_[l].resize(t * kv_dim);
      rotated_keys_[l].resize(t * kv_dim);
    }
    if (options_.values) values_[l].resize(t * kv_dim);
    if (options_.queries) queries_[l].resize(t * q_dim);
    if (options_.attention) {
      for (int h = 0; h < s.n_heads; ++h) attention_[l * std::size_t(s.n_heads) + std::size_t(h)].resize(Triangle(t));
    }
    if (options_.query_norms) {
      for (int h = 0; h < s.n_kv_heads; ++h) {
        q_norms_[Slot(int(l), h)].resize(t * std::size_t(group()));
        n_norms_[Slot(int(l), h)].resize(t);
      }
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  pending_.clear();
}

std::vector<double> RecordingCache::QueryNormSamples(int layer, int kv_head, QueryHeadReduction reduction) const {
  QAQ_CHECK(options_.query_norms, "query norms were not recorded");
  QAQ_CHECK(layer >= 0 && layer < shape().n_layers && kv_head >= 0 && kv_head < shape().n_kv_heads);
  const std::vector<double>& norms = q_norms_[Slot(layer, kv_head)];
  const std::vector<std::uint8_t>& filled = n_norms_[Slot(layer, kv_head)];
  const std::size_t g = std::size_t(group());
  std::vector<double> samples;
  samples.reserve(reduction == QueryHeadReduction::kMax ? filled.size() : norms.size());
  for (std::size_t t = 0; t < filled.size(); ++t) {
    if (filled[t] == 0) continue;
    const auto first = norms.begin() + std::ptrdiff_t(t * g);
    if (reduction == QueryHeadReduction::kMax) {
      samples.push_back(*std::max_element(first, first + filled[t]));  // "Notation": max over the group
    } else {
      samples.insert(samples.end(), first, first + filled[t]);
    }
  }
  return samples;
}

std::span<const float> RecordingCache::Key(int layer, int kv_head, int t, bool rotated) const {
  QAQ_CHECK(options_.keys, "keys were not recorded");
  QAQ_CHECK(t >= 0 && t < n_positions(layer) && kv_head >= 0 && kv_head < shape().n_kv_heads);
  const std::size_t head_dim = std::size_t(shape().head_dim);
  const std::vector<float>& keys = rotated ? rotated_keys_[std::size_t(layer)] : keys_[std::size_t(layer)];
  return {keys.data() + (std::size_t(t) * std::size_t(shape().n_kv_heads) + std::size_t(kv_head)) * head_dim,
          head_dim};
}

std::span<const float> RecordingCache::Value(int layer, int kv_head, int t) const {
  QAQ_CHECK(options_.values, "values were not recorded");
  QAQ_CHECK(t >= 0 && t < n_positions(layer) && kv_head >= 0 && kv_head < shape().n_kv_heads);
  const std::size_t head_dim = std::size_t(shape().head_dim);
  return {values_[std::size_t(layer)].data() +
              (std::size_t(t) * std::size_t(shape().n_kv_heads) + std::size_t(kv_head)) * head_dim,
          head_dim};
}

std::span<const float> RecordingCache::Query(int layer, int q_head, int t) const {
  QAQ_CHECK(options_.queries, "queries were not recorded");
  QAQ_CHECK(t >= 0 && t < n_positions(layer) && q_head >= 0 && q_head < shape().n_heads);
  const std::size_t head_dim = std::size_t(shape().head_dim);
  return {queries_[std::size_t(layer)].data() +
              (std::size_t(t) * std::size_t(shape().n_heads) + std::size_t(q_head)) * head_dim,
          head_dim};
}

std::span<const float> RecordingCache::AttentionRow(int layer, int q_head, int t) const {
  QAQ_CHECK(options_.attention, "attention was not recorded");
  QAQ_CHECK(t >= 0 && t < n_positions(layer) && q_head >= 0 && q_head < shape().n_heads);
  const std::vector<float>& rows = attention_[std::size_t(layer) * std::size_t(shape().n_heads) + std::size_t(q_head)];
  return {rows.data() + Triangle(std::size_t(t)), std::size_t(t) + 1};
}

namespace {

// Concatenates per-(layer, head, t) vectors of `width` floats into [n_layers][n_heads][T][width].
template <typename Get>
std::vector<float> Gather(int n_layers, int n_heads, int n_tokens, std::size_t width, Get get) {
  std::vector<float> out;
  out.reserve(std::size_t(n_layers) * std::size_t(n_heads) * std::size_t(n_tokens) * width);
  for (int l = 0; l < n_layers; ++l) {
    for (int h = 0; h < n_heads; ++h) {
      for (int t = 0; t < n_tokens; ++t) {
        const std::span<const float> row = get(l, h, t);
        out.insert(out.end(), row.begin(), row.end());
        out.resize(out.size() + (width - row.size()), 0.0f);  // causal rows: zeros after t
      }
    }
  }
  return out;
}

}  // namespace

std::vector<float> RecordingCache::KeysTensor(bool rotated) const {
  const KvCacheShape& s = shape();
  return Gather(s.n_layers, s.n_kv_heads, n_tokens(), std::size_t(s.head_dim),
                [&](int l, int h, int t) { return Key(l, h, t, rotated); });
}

std::vector<float> RecordingCache::ValuesTensor() const {
  const KvCacheShape& s = shape();
  return Gather(s.n_layers, s.n_kv_heads, n_tokens(), std::size_t(s.head_dim),
                [&](int l, int h, int t) { return Value(l, h, t); });
}

std::vector<float> RecordingCache::QueriesTensor() const {
  const KvCacheShape& s = shape();
  return Gather(s.n_layers, s.n_heads, n_tokens(), std::size_t(s.head_dim),
                [&](int l, int h, int t) { return Query(l, h, t); });
}

std::vector<float> RecordingCache::AttentionTensor() const {
  const KvCacheShape& s = shape();
  return Gather(s.n_layers, s.n_heads, n_tokens(), std::size_t(n_tokens()),
                [&](int l, int h, int t) { return AttentionRow(l, h, t); });
}

}  // namespace qaq
