// Causal attention of a batch of query tokens over an f16 KV cache stored in blocks (layout in
// engine/kv/kv_cache.h), with an online softmax: no score matrix, one pass over each key block.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/thread_pool.h"

namespace tessera::ops {

struct AttentionArgs {
  int64_t n_tokens = 0;
  int n_head = 0, n_head_kv = 0, head_dim = 0;
  float scale = 1.0f;                       // applied to q·k (1/sqrt(head_dim))
  const float* q = nullptr;                 // [n_tokens][q_stride], heads of head_dim, RoPE applied
  int64_t q_stride = 0;
  float* out = nullptr;                     // [n_tokens][out_stride], heads of head_dim
  int64_t out_stride = 0;
  const int32_t* pos = nullptr;             // [n_tokens] a token sees keys at positions [0, pos]
  const int32_t* const* block_table = nullptr;  // [n_tokens] block ids of the token's sequence
  const uint16_t* k_cache = nullptr;        // this layer's K: head h, block b at h * head_stride + b * block_elems
  const uint16_t* v_cache = nullptr;        // this layer's V, same addressing
  size_t block_elems = 0;                   // halves of one head's block
  size_t head_stride = 0;                   // halves between KV heads
};

namespace detail { struct AttnRows; }

// Query head h uses KV head h / (n_head / n_head_kv). Threads split over (tokens, KV heads), and
// for a single token with more threads than KV heads also over key ranges (merged afterwards); each
// group of rows runs `rows_kernel`, a registered attention_f16 kernel (kernels/registry.h) the caller
// chose (the CPU backend: once per stream).
void attention(const AttentionArgs& args, ThreadPool& pool,
               void (*rows_kernel)(const AttentionArgs&, const detail::AttnRows&));

namespace detail {

constexpr int kMaxRows = 32;  // query rows (tokens x heads) sharing one pass over the KV blocks

// Up to kMaxRows query rows (tokens x heads) that share one KV head of one sequence.
struct AttnRows {
  int n_rows = 0;
  const float* q[kMaxRows];
  float* out[kMaxRows];
  int32_t last[kMaxRows];  // highest key position the row may see
  const int32_t* blocks = nullptr;
  int kv_head = 0;
  // Split-K: only keys in [key_begin, key_end) (key_begin a multiple of the KV block); with
  // part_ml set, out[r] gets the unnormalised output and part_ml[2r], part_ml[2r+1] the running
  // max and sum, to be merged with the other key ranges.
  int key_begin = 0;
  int key_end = 1 << 30;
  float* part_ml = nullptr;
};

void attend_rows_generic(const AttentionArgs& a, const AttnRows& rows);
void attend_rows_avx512(const AttentionArgs& a, const AttnRows& rows);  // head_dim % 16 == 0, <= 256
void attend_rows_avx2(const AttentionArgs& a, const AttnRows& rows);    // head_dim % 8 == 0, <= 256

}  // namespace detail
}  // namespace tessera::ops
