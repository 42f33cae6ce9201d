// Flags shared by the subcommands that run the model (generate, bench): -m, -t, -c, --kv.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "kv/kv_registry.h"
#include "qaq/engine.h"
#include "qaq/model.h"

namespace qaq::tool {

struct EngineFlags {
  std::string model_path;
  int n_threads = 1;
  int context_length = 0;
  std::string kv_cache = "fp32";

  void Add(CLI::App& sub) {
    sub.add_option("-m,--model", model_path, "Model file: GGUF or llama2.c checkpoint (.bin)")
        ->required();
    sub.add_option("-t,--threads", n_threads, "Threads (results are identical for any count)")
        ->capture_default_str();
    sub.add_option("-c,--ctx-size", context_length, "Context length in positions (0: the model's)")
        ->capture_default_str();
    sub.add_option("--kv", kv_cache, "KV cache: " + internal::KvBackendNames())->capture_default_str();
  }

  SessionOptions session_options() const {
    SessionOptions o;
    o.n_threads = n_threads;
    o.context_length = context_length;
    o.kv_cache = kv_cache;
    return o;
  }
};

}  // namespace qaq::tool
