// `qaq info`: what a model file holds — format, configuration, vocabulary, and every weight
// tensor with its type, shape and size. Reads only headers and the tensor directory (the
// weights stay unread in the memory mapping), so it is instant on any size of model.
#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "command.h"
#include "qaq/model.h"
#include "qaq/tokenizer.h"

namespace qaq::tool {
namespace {

struct InfoFlags {
  std::string model_path;
  std::string tokenizer_path;
};

std::string Mib(std::size_t bytes) { return fmt::format("{:.2f} MiB", bytes / 1048576.0); }

std::vector<const TensorView*> AllTensors(const Model& model) {
  const ModelWeights& w = model.weights();
  std::vector<const TensorView*> out = {&w.token_embedding};
  for (const LayerWeights& l : w.layers) {
    for (const TensorView* t :
         {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_norm, &l.w_gate, &l.w_down, &l.w_up}) {
      out.push_back(t);
    }
  }
  out.push_back(&w.output_norm);
  if (!model.config().shared_classifier) out.push_back(&w.output);
  return out;
}

Status RunInfo(const InfoFlags& flags) {
  QAQ_ASSIGN_OR_RETURN(Model model, LoadModel(flags.model_path));
  const ModelConfig& c = model.config();

  // The vocabulary: an explicit -z must load; otherwise its absence is reported, not an error.
  std::unique_ptr<Tokenizer> tokenizer;
  std::string vocab_source;
  if (!flags.tokenizer_path.empty()) {
    QAQ_ASSIGN_OR_RETURN(Tokenizer t, LoadTokenizer(model, flags.tokenizer_path));
    tokenizer = std::make_unique<Tokenizer>(std::move(t));
    vocab_source = flags.tokenizer_path;
  } else if (StatusOr<Tokenizer> t = LoadTokenizer(model); t.ok()) {
    tokenizer = std::make_unique<Tokenizer>(std::move(*t));
    vocab_source = model.vocabulary().pieces.empty() ? "tokenizer file beside the model"
                                                     : "embedded in the model";
  } else if (t.status().code() != StatusCode::kNotFound) {
    return t.status();  // a tokenizer file exists beside the model but is corrupt
  }

  fmt::print("file:               {}\n", model.path());
  fmt::print("format:             {}\n", model.format() == "gguf" ? "GGUF" : "llama2.c checkpoint");
  fmt::print("architecture:       {}\n", c.architecture);
  fmt::print("name:               {}\n", c.name);
  fmt::print("dim:                {}\n", c.dim);
  fmt::print("hidden_dim:         {}\n", c.hidden_dim);
  fmt::print("n_layers:           {}\n", c.n_layers);
  fmt::print("n_heads:            {}\n", c.n_heads);
  fmt::print("n_kv_heads:         {}{}\n", c.n_kv_heads,
             c.n_kv_heads < c.n_heads
                 ? fmt::format(" (grouped-query attention, {} query heads per KV head)",
                               c.n_heads / c.n_kv_heads)
                 : "");
  fmt::print("head_dim:           {}\n", c.head_dim);
  fmt::print("context_length:     {}\n", c.context_length);
  fmt::print("rope_theta:         {}\n", c.rope_theta);
  fmt::print("rope_dim:           {} (adjacent pairs)\n", c.rope_dim);
  fmt::print("rms_eps:            {}\n", c.rms_eps);
  fmt::print("shared_classifier:  {}\n", c.shared_classifier ? "yes" : "no");
  fmt::print("vocab_size:         {}\n", c.vocab_size);
  if (tokenizer) {
    fmt::print("vocabulary:         {} tokens, {}; BOS {}, EOS {}\n", tokenizer->vocab_size(),
               vocab_source, tokenizer->bos_id(), tokenizer->eos_id());
  } else {
    fmt::print("vocabulary:         none found (pass a llama2.c tokenizer file with -z)\n");
  }
  // What one position costs in an fp16 KV cache: keys and values of every layer and KV head.
  const std::size_t kv_bytes = std::size_t{2} * c.n_layers * c.n_kv_heads * c.head_dim * 2;
  fmt::print("kv_bytes_per_token: {} (fp16 keys and values)\n", kv_bytes);

  const std::vector<const TensorView*> tensors = AllTensors(model);
  std::size_t name_width = 4;
  for (const TensorView* t : tensors) name_width = std::max(name_width, t->name.size());
  fmt::print("\ntensors: {} (shape: [rows, cols] = [outputs, inputs])\n", tensors.size());
  fmt::print("  {:<{}}  {:<5}  {:>13}  {:>12}\n", "name", name_width, "type", "shape", "bytes");
  std::map<std::string, int> per_type;
  std::size_t total = 0;
  for (const TensorView* t : tensors) {
    const std::string shape =
        t->rows == 1 ? fmt::format("[{}]", t->cols) : fmt::format("[{}, {}]", t->rows, t->cols);
    fmt::print("  {:<{}}  {:<5}  {:>13}  {:>12}\n", t->name, name_width, TensorTypeName(t->type),
               shape, t->bytes);
    ++per_type[TensorTypeName(t->type)];
    total += t->bytes;
  }
  if (c.shared_classifier) fmt::print("  (output.weight is token_embd.weight)\n");
  fmt::print("total weight bytes: {} ({})\n", total, Mib(total));
  std::string types;
  for (const auto& [type, count] : per_type) {
    types += fmt::format("{}{} {}", types.empty() ? "" : ", ", type, count);
  }
  fmt::print("tensor types:       {}\n", types);
  return OkStatus();
}

const RegisterCommand kRegister({
    .name = "info",
    .description = "Show a model's format, configuration, vocabulary and tensors",
    .setup = [](CLI::App& sub) -> std::function<Status()> {
      auto flags = std::make_shared<InfoFlags>();
      sub.add_option("-m,--model", flags->model_path,
                     "Model file: GGUF or llama2.c checkpoint (.bin)")
          ->required();
      sub.add_option("-z,--tokenizer", flags->tokenizer_path,
                     "llama2.c tokenizer file (default: the GGUF's vocabulary, or tok<N>.bin / "
                     "tokenizer.bin beside the model)");
      return [flags] { return RunInfo(*flags); };
    },
    .order = 40,
});

}  // namespace
}  // namespace qaq::tool
