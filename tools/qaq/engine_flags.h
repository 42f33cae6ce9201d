// Flags shared by the subcommands that run the model (generate, bench, perplexity, ...): -m, -t,
// -c, and the KV cache: --kv plus its options. The cache flags only append options to the --kv
// spec (qaq/kv_config.h), so every command gets every cache, and the library checks the values:
// a bad value is a kInvalidArgument from Session::Create (exit code 2).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "kv/kv_registry.h"
#include "qaq/engine.h"
#include "qaq/kv_config.h"
#include "qaq/model.h"

namespace qaq::tool {

struct EngineFlags {
  std::string model_path;
  int n_threads = 1;
  int context_length = 0;
  std::string kv_cache = "fp32";

  // Cache options; empty: not given.
  std::string kv_keys, kv_ratio, kv_bits;
  bool kv_keys_prerope = false, kv_keys_postrope = false;
  std::string qaq_key_error, qaq_value_error, qaq_window, qaq_outliers, qaq_bits, qaq_granularity,
      qaq_formula, qaq_tier, qaq_tier_dir, qaq_calib;

  void Add(CLI::App& sub) {
    sub.add_option("-m,--model", model_path, "Model file: GGUF or llama2.c checkpoint (.bin)")
        ->required();
    sub.add_option("-t,--threads", n_threads, "Threads (results are identical for any count)")
        ->capture_default_str();
    sub.add_option("-c,--ctx-size", context_length, "Context length in positions (0: the model's)")
        ->capture_default_str();
    sub.add_option("--kv", kv_cache, "KV cache:" + internal::KvBackendHelp())->capture_default_str();
    const std::string cache = "KV cache";
    sub.add_option("--kv-keys", kv_keys,
                   "Key groups: token (per token) or channel:G (per channel, blocks of G tokens; qaq's default "
                   "channel:64)")
        ->group(cache);
    sub.add_flag("--kv-keys-prerope", kv_keys_prerope, "Quantize keys before RoPE, rotated when attending")
        ->group(cache);
    sub.add_flag("--kv-keys-postrope", kv_keys_postrope, "Quantize keys after RoPE (the default)")
        ->group(cache);
    sub.add_option("--kv-ratio", kv_ratio, "qaq: choose the error targets on the prompt to reach this compression ratio")
        ->group(cache);
    sub.add_option("--kv-bits", kv_bits, "qaq: the same as --kv-ratio 16/B (bits per cached value, all included)")
        ->group(cache);
    const std::string qaq = "QAQ cache (--kv qaq)";
    sub.add_option("--qaq-key-error", qaq_key_error,
                   fmt::format("sigma_max^S, the key target (default {})", kDefaultQaqKeyError))
        ->group(qaq);
    sub.add_option("--qaq-value-error", qaq_value_error,
                   fmt::format("sigma_max^X, the value target (default {})", kDefaultQaqValueError))
        ->group(qaq);
    sub.add_option("--qaq-window", qaq_window, "Attention window n (default 5)")->group(qaq);
    sub.add_option("--qaq-outliers", qaq_outliers, "Outlier ratio alpha (default 0.01; also for uniform, kivi)")
        ->group(qaq);
    sub.add_option("--qaq-bits", qaq_bits, "MIN:MAX bit widths (default 0:8; 16:16 keeps every token fp16)")
        ->group(qaq);
    sub.add_option("--qaq-granularity", qaq_granularity, "Group per head, layer or token; auto (default): the finest with >= 64 values")->group(qaq);
    sub.add_option("--qaq-formula", qaq_formula, "paper, authors or strict (every group's error within its target) (default paper)")->group(qaq);
    sub.add_option("--qaq-tier", qaq_tier, "Full-precision tier: ram, disk or none (default ram)")->group(qaq);
    sub.add_option("--qaq-tier-dir", qaq_tier_dir, "Folder of the disk tier's file (default $TMPDIR or /tmp)")
        ->group(qaq);
    sub.add_option("--qaq-calib", qaq_calib, "Key formula's |q|^2: prompt (measured on the sequence, pooled; the default), prompt-heads (measured, per layer and KV head), constant (the authors' 300/head_dim) or a `qaq calibrate` file")->group(qaq);
  }

  // The --kv spec with every cache flag appended as an option.
  std::string kv_spec() const {
    std::string spec = kv_cache;
    const std::vector<std::pair<const char*, const std::string*>> options = {
        {"keys", &kv_keys},           {"ratio", &kv_ratio},
        {"kv_bits", &kv_bits},        {"key_error", &qaq_key_error},
        {"value_error", &qaq_value_error}, {"window", &qaq_window},
        {"outliers", &qaq_outliers},  {"bits", &qaq_bits},
        {"granularity", &qaq_granularity}, {"formula", &qaq_formula},
        {"tier", &qaq_tier},          {"tier_dir", &qaq_tier_dir},
        {"calib", &qaq_calib}};
    for (const auto& [key, value] : options) {
      if (!value->empty()) spec += "," + std::string(key) + "=" + *value;
    }
    if (kv_keys_prerope) spec += ",prerope";
    if (kv_keys_postrope) spec += ",prerope=0";
    return spec;
  }

  SessionOptions session_options() const {
    SessionOptions o;
    o.n_threads = n_threads;
    o.context_length = context_length;
    o.kv_cache = kv_spec();
    return o;
  }
};

}  // namespace qaq::tool
