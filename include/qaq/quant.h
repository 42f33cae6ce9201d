// qaq/quant.h: the QAQ method as a library, with no model knowledge. Contents, in order:
//   1. the codec: one group of values at B bits (GroupQuantizer, PackedGroup, sizes, packing);
//   2. attention on packed codes (DotPacked, AxpyPacked and their Rows / Mixed variants);
//   3. the authors'-code compatibility codec (for comparisons only);
//   4. the bit policy: formulas, KvQuantConfig, AttentionWindow, QueryNormCalibration, BitPolicy;
//   5. QuantizeKv, the offline quantization of a whole dumped cache (`qaq quantize`).
//
// A "group" is the set of values that share one bit width and one [min, max] (QAQ-method.md §7):
// one token of one KV head (head granularity), of one layer (layer) or of the whole model
// (token). Encoding a group takes two steps, because the bit width depends on the group's range:
//
//   qaq::GroupQuantizer quantizer(/*outlier_alpha=*/0.01);
//   const qaq::GroupAnalysis& a = quantizer.Analyze(values);   // outliers, stored min/max
//   int bits = ...;                                             // the policy, from a.range()
//   qaq::PackedGroup group = quantizer.Pack(values, bits);
//   std::vector<float> back(values.size());
//   qaq::DecodeGroup(group, back);
//
// The rules, all in one place (README.md explains them for users):
// - Outliers (§4): values beyond the alpha/2 quantiles at each end. Per side the count is
//   round(alpha/2 * n) (halves up), possibly 0, and never so many that no value is left.
//   Values are ordered by (value, position), so ties are broken by position and the count is
//   exact. Non-finite values and values beyond the fp16 range (|x| > 65504) are always outliers,
//   in addition to those. Outliers are kept exactly (fp32) with their position.
// - Metadata (§3, §8): min and max of the other values, stored as fp16, min rounded down and max
//   rounded up, so that every value still lies in [min, max] after rounding. Encoding and
//   decoding both use the rounded values, and so does the policy (GroupAnalysis::range()).
// - Codes (§3): [min, max] is split into 2^B equal segments of width s = (max - min) / 2^B;
//   a value gets the code c in 0..2^B-1 of the nearest segment midpoint and is reconstructed as
//   min + (c + 1/2) s. The error is at most s/2. B = 0 stores no code: every value becomes the
//   midpoint (min + max) / 2. B = 16 is a pass-through: every value as an fp16, no metadata.
// - Packing: code i occupies bits [i*B, i*B + B) of a little-endian bit stream, so 8 codes take
//   exactly B bytes. Codes exist for every position, outlier positions included (they hold code
//   0), so that a group's codes have a fixed size and the dot product needs no index remapping.
//
// The hot loops of attention run on packed codes without decoding a group first
// (ARCHITECTURE.md "The three concerns of the cache"): with dequant(c) = m + s c,
//   q . dequant(codes) = m * sum(q) + s * (q . codes)        DotPacked
//   out += w * dequant(codes)                               AxpyPacked
// plus a small correction for the outliers. The *Rows variants take the tokens of one
// (layer, KV head) stored back to back at one bit width, the *Mixed variants tokens of any widths.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qaq/status.h"

namespace qaq {

// Widest quantized code; 0..kMaxCodeBits are valid quantized widths.
inline constexpr int kMaxCodeBits = 8;
// The "not quantized" width: every value stored as an fp16.
inline constexpr int kPassThroughBits = 16;

// True for 0..8 and 16.
bool IsValidBits(int bits);

// Bytes of `n` codes packed at `bits` (0..8) bits each: ceil(n * bits / 8). For
// kPassThroughBits: 2 n.
std::size_t BytesFor(std::size_t n, int bits);

// ---------------------------------------------------------------------------------------------
// Stored form of a group.

// min and max as fp16 bit patterns (min rounded down, max rounded up). 4 bytes.
struct GroupMeta {
  std::uint16_t min_fp16 = 0;
  std::uint16_t max_fp16 = 0;
};

// The affine form of a group's reconstruction, dequant(c) = offset + scale * c, derived from
// GroupMeta and the bit width by AffineFromMeta: scale = (max - min) / 2^B,
// offset = min + scale / 2. For the pass-through width: offset 0, scale 1 (codes are fp16).
struct AffineMeta {
  float offset = 0.0f;
  float scale = 0.0f;
};
AffineMeta AffineFromMeta(GroupMeta meta, int bits);
// out[i] = AffineFromMeta(metas[i], bits) for i < n (SIMD: attention converts a whole run of
// groups per call).
void AffineFromMetas(const GroupMeta* metas, std::size_t n, int bits, AffineMeta* out);

// One value kept exactly. `index` is the position inside the group.
struct Outlier {
  std::uint32_t index = 0;
  float value = 0.0f;
};

// A quantized group that owns its data.
struct PackedGroup {
  int bits = 0;                   // 0..8, or kPassThroughBits
  int size = 0;                   // number of values n
  GroupMeta meta;                 // unused for the pass-through width
  std::vector<std::uint8_t> codes;   // BytesFor(size, bits) bytes
  std::vector<Outlier> outliers;     // sorted by index

  // Exact stored bytes: GroupBytes(size, bits, outliers.size()).
  std::size_t bytes() const;
};

// Exact bytes of a stored group (§8): packed codes + metadata (2 x 16 bits; none for the
// pass-through width) + outliers (fp32 value + position: 16 bits when n <= 65536, else 32).
std::size_t GroupBytes(std::size_t n, int bits, std::size_t n_outliers);
// Bytes of one outlier in a group of n values (4 + 2 or 4 + 4).
std::size_t OutlierBytes(std::size_t n);

// Outliers per side for a group of n values and ratio alpha (both sides together, in [0, 1]):
// round(alpha / 2 * n), halves up, at most (n - 1) / 2.
int OutliersPerSide(std::size_t n, double alpha);

// What Analyze found out about a group: its outliers and its stored range.
struct GroupAnalysis {
  GroupMeta meta;             // fp16 min (rounded down) and max (rounded up)
  float min = 0.0f;           // the rounded values as floats
  float max = 0.0f;
  std::vector<Outlier> outliers;  // sorted by index

  // The range the bit policy must use: the stored (rounded) range, max - min.
  float range() const { return max - min; }
};

// Encodes groups; keeps scratch buffers so that encoding many groups does not allocate.
// Not thread-safe: use one per thread.
class GroupQuantizer {
 public:
  // alpha: the outlier ratio (both sides together), in [0, 1). 0 disables outliers except for
  // the non-finite and out-of-fp16-range values, which are always outliers.
  explicit GroupQuantizer(double outlier_alpha = 0.0);

  double outlier_alpha() const { return outlier_alpha_; }

  // Selects the outliers and computes the stored range of `values` (at most 2^32 - 1 values).
  const GroupAnalysis& Analyze(std::span<const float> values);
  const GroupAnalysis& analysis() const { return analysis_; }

  // Packs `values` (the same values as the last Analyze) at `bits` (0..8 or 16).
  PackedGroup Pack(std::span<const float> values, int bits);

  // Allocation-free form of Pack for a cache: writes BytesFor(values.size(), bits) bytes to
  // `codes`. The metadata and outliers to store are analysis().meta and analysis().outliers
  // (for the pass-through width only the non-finite and out-of-range values are outliers; see
  // PassThroughOutliers).
  void PackCodesTo(std::span<const float> values, int bits, std::uint8_t* codes);

 private:
  double outlier_alpha_;
  GroupAnalysis analysis_;
  std::vector<std::uint32_t> order_;
  std::vector<std::uint8_t> is_outlier_;
  std::vector<std::uint8_t> codes_;
};

// The outliers of a pass-through (fp16) group: the values fp16 cannot hold (non-finite or
// |x| > 65504), kept exactly.
std::vector<Outlier> PassThroughOutliers(std::span<const float> values);

// Convenience: Analyze + Pack. bits must be 0..8 or 16, alpha in [0, 1).
StatusOr<PackedGroup> EncodeGroup(std::span<const float> values, int bits, double outlier_alpha);

// Reconstructs every value of the group (outliers exactly). out.size() must equal group.size.
void DecodeGroup(const PackedGroup& group, std::span<float> out);

// q . decode(group) and out += w * decode(group), without decoding; q and out have group.size
// elements. Uses the fast kernels below plus the outlier correction.
float GroupDot(std::span<const float> q, const PackedGroup& group);
void GroupAxpy(float w, const PackedGroup& group, std::span<float> out);

// ---------------------------------------------------------------------------------------------
// Bit packing (codes are 0..2^bits - 1, bits 1..8; bits 0 writes nothing).

void PackCodes(std::span<const std::uint8_t> codes, int bits, std::uint8_t* packed);
void UnpackCodes(const std::uint8_t* packed, int bits, std::span<std::uint8_t> codes);

// §6 without a full-precision copy: lowers a group's width from `from_bits` to `to_bits`
// (0 <= to_bits <= from_bits <= 8) by keeping the high bits of every code (c >> (from - to)).
// The metadata and outliers stay as they are. With the same [min, max], every segment at to_bits
// is exactly 2^(from - to) segments at from_bits, so the result equals quantizing the original
// values at to_bits directly (up to float rounding at segment edges): no error accumulates.
// Writes BytesFor(n, to_bits) bytes.
void RequantizeCodesDown(const std::uint8_t* packed, std::size_t n, int from_bits, int to_bits,
                         std::uint8_t* out);

// ---------------------------------------------------------------------------------------------
// Hot loops on packed codes. `codes` is BytesFor(n, bits) bytes (n fp16 values for the
// pass-through width), `q`/`out` have n floats. Outliers are not included: add
// OutlierDot / OutlierAxpy (or use GroupDot / GroupAxpy). All variants are exact up to float
// rounding; the order of the additions differs from the scalar references in src/quant.

// q . dequant(codes) = m.offset * q_sum + m.scale * (q . codes), q_sum = sum of q.
float DotPacked(const float* q, float q_sum, const std::uint8_t* codes, int bits, AffineMeta m,
                int n);
// out[i] += w * dequant(codes)[i].
void AxpyPacked(float w, const std::uint8_t* codes, int bits, AffineMeta m, int n, float* out);

// n_rows groups of the same width stored `row_bytes` apart (row r at codes + r * row_bytes):
// out[r] = q . dequant(row r).
void DotPackedRows(const float* q, float q_sum, const std::uint8_t* codes, std::size_t row_bytes,
                   const AffineMeta* metas, int n_rows, int bits, int n, float* out);
// out[i] += sum over rows r of w[r] * dequant(row r)[i].
void AxpyPackedRows(const float* w, const std::uint8_t* codes, std::size_t row_bytes,
                    const AffineMeta* metas, int n_rows, int bits, int n, float* out);

// Tokens of mixed widths (a QAQ cache): one descriptor per row, any width (0..8 or 16) per row.
// One dispatch for the whole run; the width switch happens per row inside the fast code.
struct PackedRowRef {
  const std::uint8_t* codes = nullptr;
  AffineMeta meta;
  int bits = 0;
};
// out[r] = q . dequant(rows[r]).
void DotPackedMixed(const float* q, float q_sum, const PackedRowRef* rows, int n_rows, int n, float* out);
// out[i] += sum over r of w[r] * dequant(rows[r])[i].
void AxpyPackedMixed(const float* w, const PackedRowRef* rows, int n_rows, int n, float* out);

// Outlier corrections for a group encoded by GroupQuantizer (outlier positions hold code 0, whose
// reconstruction is m.offset, or +0 for the pass-through width):
//   OutlierDot  = sum over outliers of q[i] * (value - dequant(0))
//   OutlierAxpy: out[i] += w * (value - dequant(0)) for every outlier.
float OutlierDot(const float* q, std::span<const Outlier> outliers, int bits, AffineMeta m);
void OutlierAxpy(float w, std::span<const Outlier> outliers, int bits, AffineMeta m, float* out);

// Reference points for benchmarks and tests: plain fp32 and fp16 dot products (fast versions).
float DotF32(const float* a, const float* b, int n);
float DotF16(const float* a, const std::uint16_t* b_fp16, int n);

// ---------------------------------------------------------------------------------------------
// The authors'-code compatibility codec (QAQ-method.md "Where the authors' code differs"): it
// reproduces src/quantizer.py of ClubieDong/KVCacheQuantization in fp32, for comparisons only.
// It is fake quantization (quantize, then dequantize right away) and not the default.

// The authors' outlier rule: with G values, the thresholds are the ceil(alpha/2 G)-th and the
// floor((1 - alpha/2) G)-th smallest value, and a value is an outlier when it is <= the first or
// > the second (so at least one per side as soon as alpha > 0). alpha = 0: no outliers.
// mask.size() == values.size(); mask[i] = 1 for an outlier.
void AuthorsOutlierMask(std::span<const float> values, double alpha, std::span<std::uint8_t> mask);

// max - min over the values that are not outliers, in fp32 (0 if every value is an outlier).
float AuthorsRange(std::span<const float> values, std::span<const std::uint8_t> mask);

// The authors' quantizer at `bits` (0..16): mean-centred grid of step range / 2^B, codes rounded
// (half to even) and clamped to [-2^(B-1), 2^(B-1) - 1], reconstructed as code * step + mean; B = 0
// gives mean - range / 2 everywhere. Outliers are copied unchanged.
void AuthorsQuantizeGroup(std::span<const float> values, std::span<const std::uint8_t> mask, int bits,
                          std::span<float> out);

}  // namespace qaq

// =============================================================================================
// The bit policy (QAQ-method.md §1-§3, §5, §7): from statistics (attention, calibrated query
// norms, the number of tokens T, a group's range) to a bit width per group. Deterministic, no
// SIMD, no storage of the cache itself; every formula can be checked by hand in double precision.
namespace qaq {

enum class KvKind { kKey, kValue };
// Which values share one bit width and one [min, max] (§7).
enum class Granularity {
  kToken,  // one group per token: all layers and KV heads
  kLayer,  // per token and layer: all KV heads of the layer
  kHead,   // per token, layer and KV head: head_dim values
};
// §3 "From a standard deviation to a bit width".
enum class BitsFormula {
  kPaper,    // B = ceil(log2(range / (2 sqrt(3) sigma)))
  kAuthors,  // B = ceil(log2(range / (2 sqrt(12) sigma) + 1)), and young keys kept at B_max too
  kStrict,   // B = ceil(log2(range / (2 sigma))): every error <= sigma, so every group's error std
             // is too (the paper's bound only holds on average; about 0.8 bits more per group)
};
// Every formula is B = ceil(log2(range / (divisor sigma) + offset)) (§3).
struct BitsFormulaTerms {
  double divisor;
  double offset;
};
BitsFormulaTerms FormulaTerms(BitsFormula formula);
enum class CodecKind {
  kMidpoint,  // the paper's quantizer (GroupQuantizer), the default
  kAuthors,   // AuthorsQuantizeGroup + AuthorsOutlierMask, for comparisons
};

const char* KvKindName(KvKind kind);           // "key", "value"
const char* GranularityName(Granularity g);    // "token", "layer", "head"
const char* BitsFormulaName(BitsFormula f);    // "paper", "authors", "strict"
const char* CodecKindName(CodecKind c);        // "midpoint", "authors"

// Everything that defines how one cache (keys or values) is quantized.
struct KvQuantConfig {
  KvKind kind = KvKind::kValue;
  int bits_min = 0;                // B_min, 0..8
  int bits_max = 8;                // B_max, bits_min..8
  int uniform_bits = -1;           // >= 0: every group gets this width (0..8, or 16 = fp16); no policy
  double target = 0.05;            // sigma_max^X (values, §1) or sigma_max^S (keys, §2); > 0
  int window = 5;                  // n: attention rows in the window (§5); >= 1
  double outlier_alpha = 0.01;     // §4, both sides together; [0, 1)
  Granularity granularity = Granularity::kHead;
  BitsFormula formula = BitsFormula::kPaper;
  CodecKind codec = CodecKind::kMidpoint;
  // Keys: the |q~|^2 used for every layer and KV head when no QueryNormCalibration is given
  // (q~ includes the softmax scale in the paper's formula; the authors' code passes its constant
  // q_norm here, without it). 0 means "not set".
  double q_norm_sq = 0.0;
};

// Checks every field; the message names the field and the allowed values.
Status ValidateKvQuantConfig(const KvQuantConfig& config);

// Parses a config from a JSON object ({"kind": "value", "bits": "0:8", ...}) or from
// comma-separated key=value pairs ("kind=value,bits=0:8,target=0.05"). Keys: kind (key|value),
// bits (MIN:MAX, or one number B for uniform B), target, window, alpha, granularity
// (token|layer|head), formula (paper|authors), codec (midpoint|authors), q_norm (|q~|^2).
// Keys not given keep the defaults of KvQuantConfig. The result is validated.
StatusOr<KvQuantConfig> ParseKvQuantConfig(std::string_view text);
// The key=value form of a config (ParseKvQuantConfig reads it back to the same config).
std::string FormatKvQuantConfig(const KvQuantConfig& config);

// §1 value bits: sigma_t^V = sigma_max^X / (sqrt(T) * S_t). S_t = 0 gives +infinity.
double ValueSigma(double target_x, int n_tokens, double attention);
// §2 key bits: sigma_t^K = sqrt(ln(T^3 / (T - 1) * (sigma_max^S)^2 + 1) / |q~|^2). T = 1 gives
// +infinity: with one token the softmax is exactly 1 whatever the key.
double KeySigma(double target_s, int n_tokens, double q_norm_sq);
// §3: the smallest B meeting sigma, clamped to [bits_min, bits_max]. range 0 or sigma = +infinity
// give bits_min.
int BitsForSigma(double range, double sigma, int bits_min, int bits_max, BitsFormula formula);

// The two formulas with their guards: a NaN, infinite or negative input (range, attention,
// q_norm_sq) or n_tokens < 1 is an InvalidArgument status; attention 0 or denormal, range 0 and
// T = 1 (keys) are valid and give bits_min.
StatusOr<int> ValueBits(const KvQuantConfig& config, double range, int n_tokens, double attention);
StatusOr<int> KeyBits(const KvQuantConfig& config, double range, int n_tokens, double q_norm_sq);

// Model dimensions the policy needs.
struct KvShape {
  int n_layers = 0;
  int n_kv_heads = 0;
  int n_heads = 0;    // query heads; a multiple of n_kv_heads (grouped-query attention)
  int head_dim = 0;
};

// §5 Attention window. Receives attention rows one at a time (one row per query position, query
// head and layer, in any order of heads and layers, positions non-decreasing per head) and keeps,
// per (layer, KV head) and token, the maximum over the last `window` query positions and over
// the query heads that share the KV head. Memory: window rows per (layer, KV head); Observe costs
// one pass over the row. Suited to generation: after the prompt, each step adds one row per head.
class AttentionWindow {
 public:
  AttentionWindow(const KvShape& shape, int window);

  // The softmax row of `q_head` in `layer` at position `query_pos`, over tokens
  // 0..probs.size()-1. A NaN or negative probability, or an index out of range, is an error.
  // A row older than the window (query_pos <= last position - window) is ignored.
  Status Observe(int layer, int q_head, int query_pos, std::span<const float> probs);

  // max over the window's rows (and the query heads of kv_head) of the attention token t got.
  float Max(int layer, int kv_head, int token) const;
  // How many of the window's query positions have seen token t (0..window): positions >= t.
  int RowsSeen(int layer, int kv_head, int token) const;
  // Fewer than `window` rows have seen the token: it stays at B_max (§5).
  bool Young(int layer, int kv_head, int token) const { return RowsSeen(layer, kv_head, token) < window_; }
  // Max and Young of tokens 0..max.size()-1 at once, in one pass over the window's rows (what a
  // cache needs every step). young[t] = 1 when token t is young. Both spans have one entry per token.
  void MaxRow(int layer, int kv_head, std::span<float> max, std::span<std::uint8_t> young) const;

  int window() const { return window_; }
  const KvShape& shape() const { return shape_; }
  // The highest query position observed, -1 before any row.
  int last_position() const { return last_position_; }

  // Forgets rows at positions >= n_tokens and attention to tokens >= n_tokens.
  void Truncate(int n_tokens);

 private:
  struct Slot {
    int position = -1;           // query position this slot holds, -1 = empty
    std::vector<float> max_row;  // max over query heads of the group, per token
  };
  const Slot* SlotFor(int layer, int kv_head, int position) const;

  KvShape shape_;
  int window_;
  int last_position_ = -1;
  std::vector<Slot> slots_;  // [n_layers][n_kv_heads][window], slot = position % window
};

// Calibrated |q~|^2 per (layer, KV head) for the key formula (§2): the samples collected on
// calibration text, summarised by a high quantile (default 0.9, the paper's upper 10%).
// q~ includes the softmax scale. With grouped-query attention, one sample per step and KV head
// should be the maximum over the query heads of the group (QAQ-method.md "Notation").
class QueryNormCalibration {
 public:
  QueryNormCalibration() = default;
  QueryNormCalibration(int n_layers, int n_kv_heads, double quantile = 0.9);

  // Every (layer, KV head) gets the same value (the authors' constant, or a pooled measurement).
  static QueryNormCalibration Constant(int n_layers, int n_kv_heads, double q_norm_sq);
  // The fallback value: the authors' constant 300 (a squared query norm without the softmax
  // scale) times the softmax scale squared, 1 / head_dim.
  static double FallbackQNormSq(int head_dim) { return 300.0 / head_dim; }

  // Adds one |q~|^2 sample. Non-finite or negative samples are an error.
  Status AddSample(int layer, int kv_head, double q_norm_sq);
  // Computes the quantile of every (layer, KV head) from its samples (linear interpolation
  // between order statistics, numpy's default). A pair without samples is an error.
  Status Finalize();

  int n_layers() const { return n_layers_; }
  int n_kv_heads() const { return n_kv_heads_; }
  double quantile() const { return quantile_; }
  // The calibrated |q~|^2 (after Finalize, Constant or Load).
  double QNormSq(int layer, int kv_head) const;
  std::size_t n_samples(int layer, int kv_head) const;

  // JSON file (schema in README.md):
  // {"format": "qaq-query-norm-calibration", "version": 1, "quantile": 0.9,
  //  "includes_softmax_scale": true, "n_layers": L, "n_kv_heads": H,
  //  "q_norm_sq": [[...H values] x L], "n_samples": [[...] x L]}
  Status Save(const std::string& path) const;
  static StatusOr<QueryNormCalibration> Load(const std::string& path);
  std::string ToJson() const;
  static StatusOr<QueryNormCalibration> FromJson(std::string_view json);

 private:
  int n_layers_ = 0;
  int n_kv_heads_ = 0;
  double quantile_ = 0.9;
  std::vector<std::vector<double>> samples_;  // [layer * n_kv_heads + head]
  std::vector<std::size_t> counts_;
  std::vector<double> q_norm_sq_;
};

// Bits for every group of a cache of n_tokens tokens. Groups of one token are numbered
// g = 0 (token), g = layer (layer), g = layer * n_kv_heads + kv_head (head).
class BitPolicy {
 public:
  // calibration: per-(layer, KV head) |q~|^2 for keys; null means the config's q_norm_sq (or
  // QueryNormCalibration::FallbackQNormSq when that is not set either).
  static StatusOr<BitPolicy> Create(const KvQuantConfig& config, const KvShape& shape,
                                    const QueryNormCalibration* calibration = nullptr);

  const KvQuantConfig& config() const { return config_; }
  int groups_per_token() const;

  // The bits of group g of `token` in a cache of n_tokens tokens, given the group's stored range
  // (GroupAnalysis::range or AuthorsRange). Values need the window (null is an error unless
  // uniform bits are configured); tokens the window calls young get bits_max (§5).
  StatusOr<int> GroupBits(int token, int n_tokens, int group, double range,
                          const AttentionWindow* window) const;

  // All groups: ranges and bits are [n_tokens][groups_per_token()].
  Status Plan(int n_tokens, std::span<const float> ranges, const AttentionWindow* window,
              std::span<int> bits) const;

  // The |q~|^2 used for group g (max over the group's layers and KV heads).
  double GroupQNormSq(int group) const { return group_q_norm_sq_[static_cast<std::size_t>(group)]; }

 private:
  BitPolicy() = default;
  KvQuantConfig config_;
  KvShape shape_;
  std::vector<double> group_q_norm_sq_;
};

// =============================================================================================
// Offline quantization of a whole dumped cache (`qaq quantize`).

// K or V of every layer: [n_layers][n_kv_heads][n_tokens][head_dim], float32.
struct KvTensorView {
  int n_layers = 0, n_kv_heads = 0, n_tokens = 0, head_dim = 0;
  std::span<const float> data;
};
// Causal softmax rows: [n_layers][n_heads][query position][key token], float32 (row p holds
// zeros after token p).
struct AttentionTensorView {
  int n_layers = 0, n_heads = 0, n_tokens = 0;
  std::span<const float> data;
};

struct KvQuantizeResult {
  std::vector<float> dequantized;         // same layout as the input
  std::vector<int> bits_shape;            // token: {T}; layer: {L, T}; head: {L, Hkv, T}
  std::vector<std::int32_t> bits;         // in that shape
  std::vector<std::uint8_t> outlier_mask; // [L][Hkv][T][D], 1 = kept exactly
  // Exact sizes (§8): the quantized cache and the fp16 cache of the same values.
  std::size_t code_bytes = 0, metadata_bytes = 0, outlier_bytes = 0, fp16_bytes = 0;
  std::size_t n_outliers = 0;
  double mean_bits = 0.0;                 // average bit width over groups
  std::size_t total_bytes() const { return code_bytes + metadata_bytes + outlier_bytes; }
  double compression_ratio() const {
    return total_bytes() == 0 ? 0.0 : static_cast<double>(fp16_bytes) / static_cast<double>(total_bytes());
  }
};

// Applies a key or value quantizer to a dumped cache, as after a prefill (§6: the prompt is
// quantized once, its last `window` attention rows forming the window). attention is needed for
// values unless uniform bits are configured; calibration as in BitPolicy::Create.
StatusOr<KvQuantizeResult> QuantizeKv(const KvQuantConfig& config, const KvTensorView& kv,
                                      const AttentionTensorView* attention,
                                      const QueryNormCalibration* calibration);

}  // namespace qaq
