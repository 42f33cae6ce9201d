#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "qaq/quant.h"

namespace qaq {
namespace {

// 1 layer, 4 query heads on 2 KV heads (heads 0, 1 -> KV 0; heads 2, 3 -> KV 1).
const KvShape kShape{1, 2, 4, 8};

std::vector<float> Row(int pos, float base) {
  std::vector<float> row(static_cast<std::size_t>(pos) + 1);
  for (int t = 0; t <= pos; ++t) row[static_cast<std::size_t>(t)] = base + 0.01f * static_cast<float>(t);
  return row;
}

TEST(AttentionWindowTest, MaxOverLastRowsAndGroupHeads) {
  AttentionWindow w(kShape, 3);
  for (int pos = 0; pos < 6; ++pos) {
    for (int head = 0; head < 4; ++head) {
      // Head 1 attends more than head 0 at even positions, less at odd ones.
      const float base = static_cast<float>(pos) * 0.1f + (head % 2 == 1 && pos % 2 == 0 ? 0.05f : 0.0f);
      ASSERT_TRUE(w.Observe(0, head, pos, Row(pos, base)).ok());
    }
  }
  EXPECT_EQ(w.last_position(), 5);
  // Token 1: rows 3, 4, 5 are the window; row 5 (odd) has max base 0.5, + 0.01 * 1.
  EXPECT_FLOAT_EQ(w.Max(0, 0, 1), 0.5f + 0.01f);
  // Token 4: rows 4 and 5 saw it; row 4 (even, head 1) 0.45 + 0.04, row 5: 0.5 + 0.04.
  EXPECT_FLOAT_EQ(w.Max(0, 0, 4), 0.54f);
  EXPECT_EQ(w.RowsSeen(0, 0, 1), 3);
  EXPECT_EQ(w.RowsSeen(0, 0, 3), 3);
  EXPECT_EQ(w.RowsSeen(0, 0, 4), 2);
  EXPECT_EQ(w.RowsSeen(0, 0, 5), 1);
  EXPECT_FALSE(w.Young(0, 0, 3));
  EXPECT_TRUE(w.Young(0, 0, 4));  // the last window - 1 tokens are young
  EXPECT_TRUE(w.Young(0, 1, 5));
}

TEST(AttentionWindowTest, LateHeadsOfTheSamePositionMerge) {
  // Prefill order: head by head, every position, as a batched forward pass reports them.
  AttentionWindow w(kShape, 2);
  for (int head = 0; head < 2; ++head) {
    for (int pos = 0; pos < 4; ++pos) {
      std::vector<float> row(static_cast<std::size_t>(pos) + 1, head == 0 ? 0.1f : 0.2f);
      ASSERT_TRUE(w.Observe(0, head, pos, row).ok());
    }
  }
  EXPECT_FLOAT_EQ(w.Max(0, 0, 0), 0.2f);  // head 1's rows 2 and 3 merged into the window
  EXPECT_EQ(w.RowsSeen(0, 0, 0), 2);
  EXPECT_EQ(w.RowsSeen(0, 1, 0), 0);  // KV head 1 got nothing
  EXPECT_FLOAT_EQ(w.Max(0, 1, 0), 0.0f);
}

// Random rows in random interleavings equal a brute-force max over the last `window` positions.
TEST(AttentionWindowTest, MatchesBruteForce) {
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  const KvShape shape{2, 2, 6, 4};
  const int n_pos = 20;
  for (int window : {1, 3, 5, 25}) {
    // probs[layer][head][pos][token]
    std::vector<float> probs(2 * 6 * n_pos * n_pos, 0.0f);
    auto at = [&](int l, int h, int p, int t) -> float& {
      return probs[((static_cast<std::size_t>(l) * 6 + static_cast<std::size_t>(h)) * n_pos + static_cast<std::size_t>(p)) * n_pos + static_cast<std::size_t>(t)];
    };
    for (int l = 0; l < 2; ++l)
      for (int h = 0; h < 6; ++h)
        for (int p = 0; p < n_pos; ++p)
          for (int t = 0; t <= p; ++t) at(l, h, p, t) = u(rng);
    AttentionWindow w(shape, window);
    // Layer by layer; inside a layer, position-major with heads shuffled per position.
    for (int l = 0; l < 2; ++l) {
      for (int p = 0; p < n_pos; ++p) {
        std::vector<int> heads = {0, 1, 2, 3, 4, 5};
        std::shuffle(heads.begin(), heads.end(), rng);
        for (int h : heads) {
          ASSERT_TRUE(w.Observe(l, h, p, std::span<const float>(&at(l, h, p, 0), static_cast<std::size_t>(p) + 1)).ok());
        }
      }
    }
    for (int l = 0; l < 2; ++l) {
      for (int kv = 0; kv < 2; ++kv) {
        for (int t = 0; t < n_pos; ++t) {
          float expected = 0.0f;
          int seen = 0;
          for (int p = std::max(t, n_pos - window); p < n_pos; ++p) {
            ++seen;
            for (int h = 3 * kv; h < 3 * kv + 3; ++h) expected = std::max(expected, at(l, h, p, t));
          }
          ASSERT_EQ(w.Max(l, kv, t), expected) << window << " " << l << " " << kv << " " << t;
          ASSERT_EQ(w.RowsSeen(l, kv, t), seen);
        }
      }
    }
  }
}

TEST(AttentionWindowTest, GenerationStepsSlideTheWindow) {
  AttentionWindow w({1, 1, 1, 4}, 2);
  ASSERT_TRUE(w.Observe(0, 0, 0, std::vector<float>{1.0f}).ok());
  ASSERT_TRUE(w.Observe(0, 0, 1, std::vector<float>{0.9f, 0.1f}).ok());
  EXPECT_FLOAT_EQ(w.Max(0, 0, 0), 1.0f);
  ASSERT_TRUE(w.Observe(0, 0, 2, std::vector<float>{0.2f, 0.3f, 0.5f}).ok());
  EXPECT_FLOAT_EQ(w.Max(0, 0, 0), 0.9f);  // row 0 left the window
  ASSERT_TRUE(w.Observe(0, 0, 3, std::vector<float>{0.1f, 0.1f, 0.1f, 0.7f}).ok());
  EXPECT_FLOAT_EQ(w.Max(0, 0, 0), 0.2f);
  EXPECT_FLOAT_EQ(w.Max(0, 0, 1), 0.3f);
  // A row older than the window is ignored.
  ASSERT_TRUE(w.Observe(0, 0, 1, std::vector<float>{5.0f, 5.0f}).ok());
  EXPECT_FLOAT_EQ(w.Max(0, 0, 0), 0.2f);
  w.Truncate(3);
  EXPECT_EQ(w.last_position(), 2);
  EXPECT_FLOAT_EQ(w.Max(0, 0, 0), 0.2f);  // only row 2 is left
  EXPECT_EQ(w.RowsSeen(0, 0, 0), 1);
  w.Truncate(0);
  EXPECT_EQ(w.last_position(), -1);
  EXPECT_EQ(w.RowsSeen(0, 0, 0), 0);
}

TEST(AttentionWindowTest, BadRowsAreErrors) {
  AttentionWindow w(kShape, 3);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(w.Observe(1, 0, 0, std::vector<float>{1.0f}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(w.Observe(0, 4, 0, std::vector<float>{1.0f}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(w.Observe(0, 0, -1, std::vector<float>{1.0f}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(w.Observe(0, 0, 1, std::vector<float>{0.5f, nan}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(w.Observe(0, 0, 1, std::vector<float>{-0.5f, 1.5f}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(w.Observe(0, 0, 0, std::vector<float>{std::numeric_limits<float>::infinity()}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(w.last_position(), -1);  // nothing was recorded
}

}  // namespace
}  // namespace qaq
