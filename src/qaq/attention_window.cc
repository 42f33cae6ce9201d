// §5 attention window: per (layer, KV head), the last `window` query positions' attention rows,
// each already reduced to the maximum over the query heads sharing the KV head. A ring of
// `window` slots indexed by position % window replaces the oldest row as positions advance.
#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "qaq/quant.h"

namespace qaq {

AttentionWindow::AttentionWindow(const KvShape& shape, int window) : shape_(shape), window_(window) {
  QAQ_CHECK(window >= 1, "window {}", window);
  QAQ_CHECK(shape.n_layers > 0 && shape.n_kv_heads > 0 && shape.n_heads >= shape.n_kv_heads &&
                shape.n_heads % shape.n_kv_heads == 0,
            "shape {} layers, {} heads, {} KV heads", shape.n_layers, shape.n_heads, shape.n_kv_heads);
  slots_.resize(static_cast<std::size_t>(shape.n_layers) * static_cast<std::size_t>(shape.n_kv_heads) *
                static_cast<std::size_t>(window));
}

Status AttentionWindow::Observe(int layer, int q_head, int query_pos, std::span<const float> probs) {
  if (layer < 0 || layer >= shape_.n_layers) return InvalidArgumentError("attention row: layer {} out of range", layer);
  if (q_head < 0 || q_head >= shape_.n_heads) return InvalidArgumentError("attention row: head {} out of range", q_head);
  if (query_pos < 0) return InvalidArgumentError("attention row: position {} < 0", query_pos);
  for (std::size_t t = 0; t < probs.size(); ++t) {
    if (!(probs[t] >= 0.0f) || std::isinf(probs[t])) {
      return InvalidArgumentError("attention row (layer {}, head {}, position {}): token {} has weight {}", layer,
                                  q_head, query_pos, t, probs[t]);
    }
  }
  if (query_pos <= last_position_ - window_) return OkStatus();  // older than the window
  const int kv_head = q_head / (shape_.n_heads / shape_.n_kv_heads);
  Slot& slot = slots_[(static_cast<std::size_t>(layer) * static_cast<std::size_t>(shape_.n_kv_heads) +
                       static_cast<std::size_t>(kv_head)) * static_cast<std::size_t>(window_) +
                      static_cast<std::size_t>(query_pos % window_)];
  if (slot.position != query_pos) {
    // The slot held position query_pos - k * window (k >= 1): that row has left the window.
    slot.position = query_pos;
    slot.max_row.assign(probs.begin(), probs.end());
  } else {
    // Another query head of the same group at the same position: keep the maximum.
    if (slot.max_row.size() < probs.size()) slot.max_row.resize(probs.size(), 0.0f);
    for (std::size_t t = 0; t < probs.size(); ++t) slot.max_row[t] = std::max(slot.max_row[t], probs[t]);
  }
  last_position_ = std::max(last_position_, query_pos);
  return OkStatus();
}

const AttentionWindow::Slot* AttentionWindow::SlotFor(int layer, int kv_head, int position) const {
  QAQ_CHECK(layer >= 0 && layer < shape_.n_layers && kv_head >= 0 && kv_head < shape_.n_kv_heads,
            "layer {} KV head {}", layer, kv_head);
  const Slot& slot = slots_[(static_cast<std::size_t>(layer) * static_cast<std::size_t>(shape_.n_kv_heads) +
                             static_cast<std::size_t>(kv_head)) * static_cast<std::size_t>(window_) +
                            static_cast<std::size_t>(position % window_)];
  return slot.position == position ? &slot : nullptr;
}

float AttentionWindow::Max(int layer, int kv_head, int token) const {
  float m = 0.0f;
  for (int p = std::max(token, last_position_ - window_ + 1); p <= last_position_; ++p) {
    const Slot* slot = SlotFor(layer, kv_head, p);
    if (slot != nullptr && static_cast<std::size_t>(token) < slot->max_row.size()) {
      m = std::max(m, slot->max_row[static_cast<std::size_t>(token)]);
    }
  }
  return m;
}

int AttentionWindow::RowsSeen(int layer, int kv_head, int token) const {
  int seen = 0;
  for (int p = std::max(token, last_position_ - window_ + 1); p <= last_position_; ++p) {
    if (SlotFor(layer, kv_head, p) != nullptr) ++seen;
  }
  return seen;
}

void AttentionWindow::MaxRow(int layer, int kv_head, std::span<float> max, std::span<std::uint8_t> young) const {
  QAQ_CHECK(max.size() == young.size(), "MaxRow: {} maxima, {} flags", max.size(), young.size());
  std::fill(max.begin(), max.end(), 0.0f);
  const std::size_t n = max.size();
  // present[p - first]: the window holds a row for position p (RowsSeen counts those p >= t).
  const int first = std::max(0, last_position_ - window_ + 1);
  std::vector<std::uint8_t> present(static_cast<std::size_t>(std::max(0, last_position_ - first + 1)), 0);
  for (int p = first; p <= last_position_; ++p) {
    const Slot* slot = SlotFor(layer, kv_head, p);
    if (slot == nullptr) continue;
    present[static_cast<std::size_t>(p - first)] = 1;
    // As Max: tokens t <= p within the row.
    const std::size_t end = std::min({n, slot->max_row.size(), static_cast<std::size_t>(p) + 1});
    for (std::size_t t = 0; t < end; ++t) max[t] = std::max(max[t], slot->max_row[t]);
  }
  // Rows seen by token t: present positions p >= t, counted from the last position down.
  int seen = 0;
  for (int p = last_position_; p >= first && p >= static_cast<int>(n); --p) seen += present[static_cast<std::size_t>(p - first)];
  for (std::size_t t = n; t-- > 0;) {
    const int tt = static_cast<int>(t);
    if (tt >= first && tt <= last_position_) seen += present[static_cast<std::size_t>(tt - first)];
    young[t] = seen < window_ ? 1 : 0;
  }
}

void AttentionWindow::Truncate(int n_tokens) {
  last_position_ = -1;
  for (Slot& slot : slots_) {
    if (slot.position >= n_tokens) {
      slot.position = -1;
      slot.max_row.clear();
    } else if (slot.position >= 0) {
      if (slot.max_row.size() > static_cast<std::size_t>(n_tokens)) slot.max_row.resize(static_cast<std::size_t>(n_tokens));
      last_position_ = std::max(last_position_, slot.position);
    }
  }
}

}  // namespace qaq
