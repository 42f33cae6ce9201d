// Builds a Model from a GGUF file of architecture "llama": configuration from the "llama.*"
// metadata, weights from the standard tensor names, vocabulary from "tokenizer.ggml.*".
//
// Metadata read (defaults in brackets): llama.embedding_length, llama.feed_forward_length,
// llama.block_count, llama.attention.head_count, llama.attention.head_count_kv [head_count],
// llama.context_length, llama.rope.freq_base [10000], llama.rope.dimension_count [head_dim],
// llama.attention.layer_norm_rms_epsilon [1e-5], general.name [file name].
// Tensors: token_embd, blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm,
// ffn_gate, ffn_down, ffn_up}, output_norm, output (absent: the classifier is the embedding).
// GGUF files from llama.cpp's converters store Q and K rows in the same order as llama2.c
// checkpoints (RoPE on adjacent pairs), so no permutation is applied.
#pragma once

#include <memory>

#include "io/mmap_file.h"
#include "qaq/model.h"
#include "qaq/status.h"

namespace qaq::internal {

// Errors: kDataLoss (corrupt file, missing keys or tensors, wrong shapes), kUnimplemented
// (architecture other than llama, tensor types other than F32/F16/BF16/Q8_0, RoPE scaling,
// non-SentencePiece tokenizers).
StatusOr<Model> ReadGgufModel(std::unique_ptr<MappedFile> file);

}  // namespace qaq::internal
