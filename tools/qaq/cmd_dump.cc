// `qaq dump`: runs a prompt and writes what attention saw, per layer, as NumPy arrays plus a JSON
// manifest (README.md): keys before and after RoPE, values, scaled queries
// and the softmax rows. K, V and the attention use the layouts `qaq quantize` reads.
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "command.h"
#include "engine_flags.h"
#include "qaq/tokenizer.h"
#include "quant/npy.h"
#include "recording_session.h"

namespace qaq::tool {
namespace {

struct DumpFlags {
  EngineFlags engine;
  std::string tokenizer_path;
  std::string prompt;
  std::string out_dir;
};

Status PrepareFolder(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir, ec)) {
    return InternalError("cannot create output folder '{}': {}", dir, ec ? ec.message() : "not a folder");
  }
  if (::access(dir.c_str(), W_OK) != 0) return InternalError("output folder '{}' is not writable", dir);
  return OkStatus();
}

struct Array {
  const char* name;
  const char* file;
  std::vector<std::int64_t> shape;
  std::vector<const char*> axes;
  const char* description;
};

Status RunDump(const DumpFlags& flags) {
  QAQ_RETURN_IF_ERROR(PrepareFolder(flags.out_dir));
  QAQ_ASSIGN_OR_RETURN(Model model, LoadModel(flags.engine.model_path));
  QAQ_ASSIGN_OR_RETURN(Tokenizer tokenizer, LoadTokenizer(model, flags.tokenizer_path));
  QAQ_ASSIGN_OR_RETURN(RecordingSession run, MakeRecordingSession(model, flags.engine, RecordOptions::Everything()));
  const std::vector<int> tokens = tokenizer.Encode(flags.prompt, /*add_bos=*/true);
  if (int(tokens.size()) > run.session.context_length()) {
    return OutOfRangeError("the prompt has {} tokens but the context holds {}", tokens.size(),
                           run.session.context_length());
  }
  QAQ_RETURN_IF_ERROR(run.session.Prefill(tokens).status());
  const RecordingCache& rec = *run.recorder;
  if (rec.n_unpaired_queries() != 0) {
    return InternalError("{} queries could not be matched with their attention rows", rec.n_unpaired_queries());
  }

  const ModelConfig& c = model.config();
  const std::int64_t L = c.n_layers, H = c.n_heads, Hkv = c.n_kv_heads, D = c.head_dim;
  const std::int64_t T = std::int64_t(tokens.size());
  const std::vector<Array> arrays = {
      {"K", "K.npy", {L, Hkv, T, D}, {"layer", "kv_head", "token", "dim"},
       "keys after RoPE: what the queries are multiplied with"},
      {"K_pre_rope", "K_pre_rope.npy", {L, Hkv, T, D}, {"layer", "kv_head", "token", "dim"},
       "keys before RoPE, as the projection computes them"},
      {"V", "V.npy", {L, Hkv, T, D}, {"layer", "kv_head", "token", "dim"}, "values"},
      {"Q", "Q.npy", {L, H, T, D}, {"layer", "head", "token", "dim"},
       "queries after RoPE, multiplied by softmax_scale (q~): scores = Q . K"},
      {"attention", "attention.npy", {L, H, T, T}, {"layer", "head", "query_token", "key_token"},
       "softmax rows of every query position; zeros above the diagonal (causal)"},
  };
  const std::string dir = flags.out_dir + "/";
  QAQ_RETURN_IF_ERROR(WriteNpy(dir + arrays[0].file, rec.KeysTensor(/*rotated=*/true), arrays[0].shape));
  QAQ_RETURN_IF_ERROR(WriteNpy(dir + arrays[1].file, rec.KeysTensor(/*rotated=*/false), arrays[1].shape));
  QAQ_RETURN_IF_ERROR(WriteNpy(dir + arrays[2].file, rec.ValuesTensor(), arrays[2].shape));
  QAQ_RETURN_IF_ERROR(WriteNpy(dir + arrays[3].file, rec.QueriesTensor(), arrays[3].shape));
  QAQ_RETURN_IF_ERROR(WriteNpy(dir + arrays[4].file, rec.AttentionTensor(), arrays[4].shape));

  nlohmann::json manifest;
  manifest["format"] = "qaq-dump";
  manifest["version"] = 1;
  manifest["model"] = flags.engine.model_path;
  manifest["kv_cache"] = flags.engine.kv_cache;
  manifest["prompt"] = flags.prompt;
  manifest["tokens"] = tokens;
  manifest["n_tokens"] = T;
  manifest["model_dims"] = {{"n_layers", c.n_layers},   {"n_heads", c.n_heads},
                            {"n_kv_heads", c.n_kv_heads}, {"head_dim", c.head_dim},
                            {"dim", c.dim},             {"vocab_size", c.vocab_size},
                            {"context_length", c.context_length}, {"rope_dim", c.rope_dim},
                            {"rope_theta", c.rope_theta}};
  manifest["softmax_scale"] = 1.0 / std::sqrt(double(c.head_dim));
  manifest["queries_include_softmax_scale"] = true;
  nlohmann::json list = nlohmann::json::array();
  for (const Array& a : arrays) {
    list.push_back({{"name", a.name}, {"file", a.file}, {"dtype", "float32"}, {"shape", a.shape}, {"axes", a.axes},
                    {"description", a.description}});
  }
  manifest["arrays"] = list;
  {
    std::ofstream out(dir + "manifest.json", std::ios::binary);
    if (!out) return InternalError("cannot write '{}manifest.json'", dir);
    out << manifest.dump(2) << "\n";
    out.close();
    if (!out) return InternalError("writing '{}manifest.json' failed", dir);
  }
  fmt::print("{} tokens, {} layers: K, K_pre_rope, V [{}, {}, {}, {}], Q [{}, {}, {}, {}], attention [{}, {}, {}, {}] "
             "-> {}\n",
             T, L, L, Hkv, T, D, L, H, T, D, L, H, T, T, flags.out_dir);
  return OkStatus();
}

const RegisterCommand kRegister({
    .name = "dump",
    .description = "Run a prompt and write each layer's K (before and after RoPE), V, Q and attention "
                   "probabilities as .npy files with a JSON manifest",
    .setup =
        [](CLI::App& sub) -> std::function<Status()> {
          auto flags = std::make_shared<DumpFlags>();
          flags->engine.Add(sub);
          sub.add_option("-z,--tokenizer", flags->tokenizer_path,
                         "llama2.c tokenizer file (default: the GGUF's vocabulary, or tok<N>.bin / "
                         "tokenizer.bin beside the model)");
          sub.add_option("-p,--prompt", flags->prompt, "Prompt text (default: empty, BOS only)");
          sub.add_option("-o,--output", flags->out_dir, "Output folder (created if missing)")->required();
          return [flags] { return RunDump(*flags); };
        },
    .order = 47,
});

}  // namespace
}  // namespace qaq::tool
