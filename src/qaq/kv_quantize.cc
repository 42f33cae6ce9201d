// QuantizeKv: the offline pipeline behind `qaq quantize`. A dumped cache is quantized as after a
// prefill (§6): the attention rows of the last `window` positions form the window (§5), the
// policy gives every group its bits, the codec packs and decodes it, and every byte is counted
// (§8).
#include <algorithm>
#include <optional>
#include <vector>

#include "qaq/quant.h"

namespace qaq {
namespace {

Status CheckShapes(const KvQuantConfig& config, const KvTensorView& kv, const AttentionTensorView* attention) {
  if (kv.n_layers < 1 || kv.n_kv_heads < 1 || kv.n_tokens < 1 || kv.head_dim < 1) {
    return InvalidArgumentError("cache shape [{}, {}, {}, {}]: every dimension must be >= 1", kv.n_layers,
                                kv.n_kv_heads, kv.n_tokens, kv.head_dim);
  }
  const std::size_t n = static_cast<std::size_t>(kv.n_layers) * static_cast<std::size_t>(kv.n_kv_heads) *
                        static_cast<std::size_t>(kv.n_tokens) * static_cast<std::size_t>(kv.head_dim);
  if (kv.data.size() != n) return InvalidArgumentError("cache has {} values, its shape needs {}", kv.data.size(), n);
  if (attention != nullptr) {
    if (attention->n_layers != kv.n_layers || attention->n_tokens != kv.n_tokens || attention->n_heads < 1 ||
        attention->n_heads % kv.n_kv_heads != 0) {
      return InvalidArgumentError(
          "attention shape [{}, {}, {}, {}] does not fit the cache [{}, {}, {}, {}] (layers and tokens must match, "
          "heads must be a multiple of the KV heads)",
          attention->n_layers, attention->n_heads, attention->n_tokens, attention->n_tokens, kv.n_layers,
          kv.n_kv_heads, kv.n_tokens, kv.head_dim);
    }
    const std::size_t na = static_cast<std::size_t>(attention->n_layers) * static_cast<std::size_t>(attention->n_heads) *
                           static_cast<std::size_t>(attention->n_tokens) * static_cast<std::size_t>(attention->n_tokens);
    if (attention->data.size() != na) {
      return InvalidArgumentError("attention has {} values, its shape needs {}", attention->data.size(), na);
    }
  } else if (config.kind == KvKind::kValue && config.uniform_bits < 0) {
    return InvalidArgumentError("value bits need the attention rows (--attn)");
  }
  return OkStatus();
}

}  // namespace

StatusOr<KvQuantizeResult> QuantizeKv(const KvQuantConfig& config, const KvTensorView& kv,
                                      const AttentionTensorView* attention,
                                      const QueryNormCalibration* calibration) {
  QAQ_RETURN_IF_ERROR(ValidateKvQuantConfig(config));
  QAQ_RETURN_IF_ERROR(CheckShapes(config, kv, attention));
  const int L = kv.n_layers, H = kv.n_kv_heads, T = kv.n_tokens, D = kv.head_dim;
  const KvShape shape{L, H, attention != nullptr ? attention->n_heads : H, D};
  QAQ_ASSIGN_OR_RETURN(BitPolicy policy, BitPolicy::Create(config, shape, calibration));

  // §5: the window holds the last `window` rows of every head (the prompt's last positions).
  std::optional<AttentionWindow> window;
  if (attention != nullptr) {
    window.emplace(shape, config.window);
    for (int l = 0; l < L; ++l) {
      for (int h = 0; h < attention->n_heads; ++h) {
        for (int p = std::max(0, T - config.window); p < T; ++p) {
          const std::size_t row = ((static_cast<std::size_t>(l) * static_cast<std::size_t>(attention->n_heads) +
                                    static_cast<std::size_t>(h)) * static_cast<std::size_t>(T) +
                                   static_cast<std::size_t>(p)) * static_cast<std::size_t>(T);
          QAQ_RETURN_IF_ERROR(window->Observe(l, h, p, attention->data.subspan(row, static_cast<std::size_t>(p) + 1)));
        }
      }
    }
  }

  // Group g of token t covers layers [l0, l1) x heads [h0, h1) x all D, in that order.
  const int n_groups = policy.groups_per_token();
  const int layers_per_group = config.granularity == Granularity::kToken ? L : 1;
  const int heads_per_group = config.granularity == Granularity::kHead ? 1 : H;
  const std::size_t group_size = static_cast<std::size_t>(layers_per_group) * static_cast<std::size_t>(heads_per_group) *
                                 static_cast<std::size_t>(D);
  const auto index = [&](int l, int h, int t, int d) {
    return ((static_cast<std::size_t>(l) * static_cast<std::size_t>(H) + static_cast<std::size_t>(h)) *
                static_cast<std::size_t>(T) + static_cast<std::size_t>(t)) * static_cast<std::size_t>(D) +
           static_cast<std::size_t>(d);
  };

  KvQuantizeResult result;
  result.dequantized.resize(kv.data.size());
  result.outlier_mask.assign(kv.data.size(), 0);
  result.bits.resize(static_cast<std::size_t>(n_groups) * static_cast<std::size_t>(T));
  switch (config.granularity) {
    case Granularity::kToken: result.bits_shape = {T}; break;
    case Granularity::kLayer: result.bits_shape = {L, T}; break;
    case Granularity::kHead: result.bits_shape = {L, H, T}; break;
  }
  result.fp16_bytes = 2 * kv.data.size();

  GroupQuantizer quantizer(config.outlier_alpha);
  std::vector<float> values(group_size), decoded(group_size);
  std::vector<std::uint8_t> mask(group_size);
  double bits_sum = 0.0;
  for (int t = 0; t < T; ++t) {
    for (int g = 0; g < n_groups; ++g) {
      const int l0 = config.granularity == Granularity::kToken ? 0 : (config.granularity == Granularity::kLayer ? g : g / H);
      const int h0 = config.granularity == Granularity::kHead ? g % H : 0;
      std::size_t k = 0;
      for (int l = l0; l < l0 + layers_per_group; ++l)
        for (int h = h0; h < h0 + heads_per_group; ++h)
          for (int d = 0; d < D; ++d) values[k++] = kv.data[index(l, h, t, d)];

      int bits = 0;
      std::size_t n_outliers = 0;
      if (config.codec == CodecKind::kMidpoint) {
        const GroupAnalysis& a = quantizer.Analyze(values);
        QAQ_ASSIGN_OR_RETURN(bits, policy.GroupBits(t, T, g, a.range(), window ? &*window : nullptr));
        const PackedGroup packed = quantizer.Pack(values, bits);
        DecodeGroup(packed, decoded);
        std::fill(mask.begin(), mask.end(), std::uint8_t{0});
        for (const Outlier& o : packed.outliers) mask[o.index] = 1;
        n_outliers = packed.outliers.size();
        result.metadata_bytes += bits == kPassThroughBits ? 0 : 4;
      } else {
        AuthorsOutlierMask(values, config.outlier_alpha, mask);
        QAQ_ASSIGN_OR_RETURN(bits, policy.GroupBits(t, T, g, AuthorsRange(values, mask), window ? &*window : nullptr));
        AuthorsQuantizeGroup(values, mask, bits, decoded);
        n_outliers = static_cast<std::size_t>(std::count(mask.begin(), mask.end(), std::uint8_t{1}));
        result.metadata_bytes += 4;  // mean and scale, counted at 16 bits each as in the paper
      }
      result.code_bytes += bits == kPassThroughBits ? 2 * group_size
                                                    : (group_size * static_cast<std::size_t>(bits) + 7) / 8;
      result.outlier_bytes += n_outliers * OutlierBytes(group_size);
      result.n_outliers += n_outliers;
      result.bits[static_cast<std::size_t>(g) * static_cast<std::size_t>(T) + static_cast<std::size_t>(t)] = bits;
      bits_sum += bits;

      k = 0;
      for (int l = l0; l < l0 + layers_per_group; ++l)
        for (int h = h0; h < h0 + heads_per_group; ++h)
          for (int d = 0; d < D; ++d, ++k) {
            result.dequantized[index(l, h, t, d)] = decoded[k];
            result.outlier_mask[index(l, h, t, d)] = mask[k];
          }
    }
  }
  result.mean_bits = bits_sum / static_cast<double>(result.bits.size());
  return result;
}

}  // namespace qaq
