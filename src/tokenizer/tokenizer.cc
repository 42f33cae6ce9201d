// SentencePiece-style BPE encoding with llama2.c's rules (run.c `encode`/`decode`):
//   1. prepend the dummy-prefix space (only for non-empty text);
//   2. look up each UTF-8 code point (at most 4 bytes) as a piece; unknown code points become
//      their byte tokens <0xNN>;
//   3. repeatedly merge the adjacent pair whose concatenation is a piece with the highest score,
//      the leftmost pair on ties, until no pair merges.
// run.c rescans all pairs after every merge (quadratic); a heap of candidate pairs yields the same
// merge sequence in O(n log n), which matters for encoding whole evaluation files.
#include "qaq/tokenizer.h"

#include <cstdint>
#include <queue>
#include <string>
#include <unordered_map>

#include "core/check.h"

namespace qaq {
namespace {

// Byte value of a "<0xNN>" piece, or -1.
int ParseBytePiece(std::string_view piece) {
  if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return -1;
  auto hex = [](char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    return -1;
  };
  const int hi = hex(piece[3]), lo = hex(piece[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

// run.c starts its best-score search at -1e10, so pairs scoring at or below it never merge.
constexpr float kMinMergeScore = -1e10f;

struct Symbol {
  int id;
  int prev;  // index of the previous live symbol, -1 at the start
  int next;  // index of the next live symbol, -1 at the end
  bool alive;
};

struct Candidate {
  float score;
  int left;  // symbol index; text order, so smaller means further left
  int right;
  int left_id;
  int right_id;
  int merged_id;
};

// Highest score first; among equal scores the leftmost pair (run.c's strict '>' keeps the first).
struct CandidateOrder {
  bool operator()(const Candidate& a, const Candidate& b) const {
    if (a.score != b.score) return a.score < b.score;
    return a.left > b.left;
  }
};

}  // namespace

Tokenizer::Tokenizer(Vocabulary vocabulary) : vocabulary_(std::move(vocabulary)) {
  const Vocabulary& v = vocabulary_;
  const int n = static_cast<int>(v.pieces.size());
  QAQ_CHECK(v.scores.size() == v.pieces.size(), "{} scores for {} pieces", v.scores.size(), n);
  QAQ_CHECK(v.is_byte_token.empty() || v.is_byte_token.size() == v.pieces.size(),
            "{} byte flags for {} pieces", v.is_byte_token.size(), n);
  piece_to_id_.reserve(v.pieces.size());
  id_to_byte_.assign(v.pieces.size(), -1);
  byte_to_id_.fill(v.unk_id);
  std::array<bool, 256> seen{};
  for (int id = 0; id < n; ++id) {
    piece_to_id_.emplace(v.pieces[id], id);  // keeps the first id of a repeated piece
    // Without flags (a hand-built vocabulary), every "<0xNN>" piece is a byte token.
    const bool flagged = v.is_byte_token.empty() || v.is_byte_token[id] != 0;
    const int byte = flagged ? ParseBytePiece(v.pieces[id]) : -1;
    if (byte >= 0) {
      id_to_byte_[id] = byte;
      if (!seen[byte]) byte_to_id_[byte] = id;
      seen[byte] = true;
    }
  }
}

int Tokenizer::Lookup(std::string_view piece) const {
  auto it = piece_to_id_.find(piece);
  return it == piece_to_id_.end() ? -1 : it->second;
}

std::vector<int> Tokenizer::Encode(std::string_view text, bool add_bos) const {
  std::vector<int> out;
  if (add_bos) out.push_back(vocabulary_.bos_id);
  if (text.empty()) return out;

  // Code points to pieces, exactly as run.c groups bytes (continuations, at most 4 bytes).
  std::vector<Symbol> symbols;
  symbols.reserve(text.size() + 1);
  auto emit = [&symbols](int id) {
    const int index = static_cast<int>(symbols.size());
    symbols.push_back({id, index - 1, -1, true});
  };
  // The dummy prefix is its own symbol, as in run.c: it never groups with a stray continuation
  // byte at the start of the text.
  if (vocabulary_.add_dummy_prefix) {
    const int space = Lookup(" ");
    emit(space >= 0 ? space : byte_to_id_[' ']);
  }
  const std::string_view input = text;
  std::size_t start = 0, len = 0;
  for (std::size_t i = 0; i < input.size(); ++i) {
    const auto ch = static_cast<unsigned char>(input[i]);
    if ((ch & 0xC0) != 0x80) len = 0;  // a new code point starts
    if (len == 0) start = i;
    ++len;
    const bool next_is_continuation =
        i + 1 < input.size() && (static_cast<unsigned char>(input[i + 1]) & 0xC0) == 0x80;
    if (next_is_continuation && len < 4) continue;
    const int id = Lookup(input.substr(start, len));
    if (id >= 0) {
      emit(id);
    } else {
      // run.c's byte fallback (id = byte + 3 in llama2.c vocabularies).
      for (std::size_t b = start; b < start + len; ++b) {
        emit(byte_to_id_[static_cast<unsigned char>(input[b])]);
      }
    }
    len = 0;
  }
  for (std::size_t i = 0; i + 1 < symbols.size(); ++i) symbols[i].next = static_cast<int>(i + 1);

  std::priority_queue<Candidate, std::vector<Candidate>, CandidateOrder> queue;
  // Texts repeat the same few thousand pairs: remember each pair's lookup for this call.
  std::unordered_map<std::uint64_t, int> merged_of;
  std::string pair;
  auto consider = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const int a = symbols[left].id, b = symbols[right].id;
    const std::uint64_t key = (std::uint64_t(std::uint32_t(a)) << 32) | std::uint32_t(b);
    auto [it, inserted] = merged_of.try_emplace(key, -1);
    if (inserted) {
      pair.assign(vocabulary_.pieces[a]).append(vocabulary_.pieces[b]);
      it->second = Lookup(pair);
    }
    const int merged = it->second;
    if (merged < 0) return;
    const float score = vocabulary_.scores[merged];
    if (!(score > kMinMergeScore)) return;  // also rejects NaN, as run.c's comparison does
    queue.push({score, left, right, symbols[left].id, symbols[right].id, merged});
  };
  for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
    consider(static_cast<int>(i), static_cast<int>(i + 1));
  }
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& left = symbols[c.left];
    Symbol& right = symbols[c.right];
    // Stale entries: one side was merged away or changed since the pair was queued.
    if (!left.alive || !right.alive || left.next != c.right || left.id != c.left_id ||
        right.id != c.right_id) {
      continue;
    }
    left.id = c.merged_id;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = c.left;
    right.alive = false;
    consider(left.prev, c.left);
    consider(c.left, left.next);
  }

  for (int i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
  return out;
}

std::string Tokenizer::DecodePiece(int previous, int token) const {
  if (token < 0 || token >= vocab_size()) return {};
  // Control tokens print nothing (run.c never prints BOS; EOS ends generation).
  if (token == vocabulary_.bos_id || token == vocabulary_.eos_id) return {};
  if (id_to_byte_[token] >= 0) return std::string(1, static_cast<char>(id_to_byte_[token]));
  std::string_view piece = vocabulary_.pieces[token];
  // SentencePiece drops the dummy-prefix space of the first piece after BOS.
  if (previous == vocabulary_.bos_id && !piece.empty() && piece[0] == ' ') piece.remove_prefix(1);
  return std::string(piece);
}

std::string Tokenizer::Decode(const std::vector<int>& tokens) const {
  std::string text;
  int previous = -1;
  for (int token : tokens) {
    text += DecodePiece(previous, token);
    previous = token;
  }
  return text;
}

}  // namespace qaq
