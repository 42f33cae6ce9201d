// Reader for llama2.c checkpoints (Karpathy's run.c "legacy" export, e.g. stories260K.bin).
//
// Layout: 7 int32 {dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len}, then
// fp32 weights in this order, each row-major [out, in] and stacked over layers:
//   token_embedding [vocab, dim], rms_att [L, dim], wq [L, dim, dim], wk [L, kv_dim, dim],
//   wv [L, kv_dim, dim], wo [L, dim, dim], rms_ffn [L, dim], w1 [L, hidden, dim],
//   w2 [L, dim, hidden], w3 [L, hidden, dim], rms_final [dim],
//   freq_cis_real, freq_cis_imag [seq_len, head_dim / 2] each (unused: RoPE is recomputed),
//   wcls [vocab, dim] only when vocab_size is negative (unshared classifier).
// The file carries no RoPE theta or epsilon: run.c hard-codes 10000 and 1e-5.
#pragma once

#include <cstddef>
#include <memory>

#include "io/mmap_file.h"
#include "qaq/model.h"
#include "qaq/status.h"

namespace qaq::internal {

inline constexpr std::size_t kLlama2cHeaderBytes = 7 * 4;

// Builds a Model whose tensors point into `file`. The file must be exactly the size the header
// implies: a shorter one is truncated (kDataLoss), a longer one was not written by this exporter.
StatusOr<Model> ReadLlama2cModel(std::unique_ptr<MappedFile> file);

}  // namespace qaq::internal
