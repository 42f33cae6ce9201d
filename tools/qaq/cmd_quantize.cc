// `qaq quantize`: applies a key or value quantizer to a dumped cache tensor, offline, and writes
// what it did (README.md lists the flags, layouts and outputs).
//
//   qaq quantize --kv-config "kind=value,bits=0:8,target=0.05,window=5" --in V.npy --attn A.npy --out out/
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "command.h"
#include "qaq/quant.h"
#include "quant/npy.h"

namespace qaq::tool {
namespace {

struct QuantizeFlags {
  std::string kv_config;
  std::string in;
  std::string attn;
  std::string out;
  std::string calibration;
};

// CONFIG is either a file (JSON or key=value text) or the key=value text itself.
StatusOr<KvQuantConfig> LoadConfig(const std::string& arg) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(arg, ec)) {
    std::ifstream in(arg);
    std::stringstream text;
    text << in.rdbuf();
    auto config = ParseKvQuantConfig(text.str());
    if (!config.ok()) return config.status().WithContext(arg);
    return config;
  }
  return ParseKvQuantConfig(arg);
}

StatusOr<std::vector<float>> LoadFloats(const std::string& path, std::size_t rank, const char* what,
                                        std::vector<std::int64_t>* shape) {
  QAQ_ASSIGN_OR_RETURN(NpyArray array, ReadNpy(path));
  if (array.type != NpyType::kFloat32 && array.type != NpyType::kFloat64) {
    return InvalidArgumentError("{} '{}' must be float32 (or float64), not {}", what, path, NpyTypeDescr(array.type));
  }
  if (array.shape.size() != rank) {
    return InvalidArgumentError("{} '{}' must have {} dimensions, has shape ({})", what, path, rank,
                                fmt::join(array.shape, ", "));
  }
  for (std::int64_t d : array.shape) {
    if (d < 1 || d > (1 << 24)) return InvalidArgumentError("{} '{}': dimension {} out of range", what, path, d);
  }
  *shape = array.shape;
  return array.ToFloat32();
}

Status RunQuantize(const QuantizeFlags& flags) {
  QAQ_ASSIGN_OR_RETURN(KvQuantConfig config, LoadConfig(flags.kv_config));
  std::vector<std::int64_t> kv_shape, attn_shape;
  QAQ_ASSIGN_OR_RETURN(std::vector<float> kv_data, LoadFloats(flags.in, 4, "--in", &kv_shape));
  const KvTensorView kv{static_cast<int>(kv_shape[0]), static_cast<int>(kv_shape[1]), static_cast<int>(kv_shape[2]),
                        static_cast<int>(kv_shape[3]), kv_data};
  std::vector<float> attn_data;
  AttentionTensorView attention;
  if (!flags.attn.empty()) {
    QAQ_ASSIGN_OR_RETURN(attn_data, LoadFloats(flags.attn, 4, "--attn", &attn_shape));
    if (attn_shape[2] != attn_shape[3]) {
      return InvalidArgumentError("--attn '{}' must be [n_layers, n_heads, T, T], has shape ({})", flags.attn,
                                  fmt::join(attn_shape, ", "));
    }
    attention = {static_cast<int>(attn_shape[0]), static_cast<int>(attn_shape[1]), static_cast<int>(attn_shape[2]),
                 attn_data};
  }
  std::optional<QueryNormCalibration> calibration;
  if (!flags.calibration.empty()) {
    QAQ_ASSIGN_OR_RETURN(calibration, QueryNormCalibration::Load(flags.calibration));
  }
  QAQ_ASSIGN_OR_RETURN(KvQuantizeResult result,
                       QuantizeKv(config, kv, flags.attn.empty() ? nullptr : &attention,
                                  calibration ? &*calibration : nullptr));

  std::error_code ec;
  std::filesystem::create_directories(flags.out, ec);
  if (ec) return InternalError("cannot create output folder '{}': {}", flags.out, ec.message());
  const std::string dir = flags.out + "/";
  QAQ_RETURN_IF_ERROR(WriteNpy(dir + "dequantized.npy", std::span<const float>(result.dequantized), kv_shape));
  std::vector<std::int64_t> bits_shape(result.bits_shape.begin(), result.bits_shape.end());
  QAQ_RETURN_IF_ERROR(WriteNpy(dir + "bits.npy", std::span<const std::int32_t>(result.bits), bits_shape));
  QAQ_RETURN_IF_ERROR(WriteNpy(dir + "outlier_mask.npy", std::span<const std::uint8_t>(result.outlier_mask), kv_shape,
                               NpyType::kBool));

  nlohmann::json summary;
  summary["config"] = FormatKvQuantConfig(config);
  summary["shape"] = kv_shape;
  summary["bits_shape"] = result.bits_shape;
  summary["mean_bits"] = result.mean_bits;
  summary["n_outliers"] = result.n_outliers;
  summary["code_bytes"] = result.code_bytes;
  summary["metadata_bytes"] = result.metadata_bytes;
  summary["outlier_bytes"] = result.outlier_bytes;
  summary["total_bytes"] = result.total_bytes();
  summary["fp16_bytes"] = result.fp16_bytes;
  summary["compression_ratio"] = result.compression_ratio();
  std::ofstream summary_file(dir + "summary.json");
  summary_file << summary.dump(2) << "\n";
  summary_file.close();
  if (!summary_file) return InternalError("writing '{}summary.json' failed", dir);

  fmt::print("{} cache ({}) at {} granularity: mean {:.3f} bits, {} bytes (codes {}, metadata {}, outliers {} x {}), "
             "fp16 {} bytes, ratio {:.3f}x -> {}\n",
             KvKindName(config.kind), fmt::join(kv_shape, "x"), GranularityName(config.granularity), result.mean_bits,
             result.total_bytes(), result.code_bytes, result.metadata_bytes, result.n_outliers,
             result.n_outliers == 0 ? 0 : result.outlier_bytes / result.n_outliers, result.fp16_bytes,
             result.compression_ratio(), flags.out);
  return OkStatus();
}

const RegisterCommand kRegister({
    "quantize",
    "Apply a QAQ key or value quantizer to a dumped K/V tensor (.npy) and write the dequantized tensor, bits "
    "and outlier mask",
    [](CLI::App& sub) -> std::function<Status()> {
      auto flags = std::make_shared<QuantizeFlags>();
      sub.add_option("--kv-config", flags->kv_config,
                     "Quantizer: key=value list or a file (JSON or key=value). Keys: kind=key|value, bits=MIN:MAX or "
                     "B, target, window, alpha, granularity=token|layer|head, formula=paper|authors|strict, "
                     "codec=midpoint|authors, q_norm")
          ->required();
      sub.add_option("--in", flags->in, "K or V cache: float32 .npy [n_layers, n_kv_heads, T, head_dim]")->required();
      sub.add_option("--attn", flags->attn,
                     "Attention: float32 .npy [n_layers, n_heads, T, T], causal softmax rows (needed for values)");
      sub.add_option("--calibration", flags->calibration,
                     "Query-norm calibration JSON for keys (default: q_norm from the config, else 300 / head_dim)");
      sub.add_option("--out", flags->out, "Output folder (created if missing)")->required();
      return [flags] { return RunQuantize(*flags); };
    },
    50,
});

}  // namespace
}  // namespace qaq::tool
