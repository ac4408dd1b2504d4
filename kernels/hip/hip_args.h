// Arguments of the HIP kernels (kernels/hip/*.hip), one struct per kernel, passed by value as the
// kernel's only parameter: the same bytes for hipModuleLaunchKernel and for the emulator. Compiles as
// C++ and as HIP. Pointers are device addresses; shapes are in elements unless named _bytes.
#pragma once
#include <stdint.h>

namespace tessera::hip {

constexpr int kWave = 32;

// The batch words begin() uploads (uint32): tokens[n], pos[n], tbl[n] (offset of the token's block ids
// in this array), out_rows[n_out], then the block ids.
struct BatchView {
  const uint32_t* words;
  uint32_t n_tokens, off_pos, off_tbl, off_out;
};

struct EmbedArgs {  // x[t] = dequant(table row tokens[t]); grid (n_tokens), block 256
  const uint8_t* table;
  float* x;  // [n_tokens][n_embd]
  BatchView b;
  int64_t row_bytes;
  int32_t n_embd, wtype;
};

struct RmsnormArgs {  // one wave per row; grid (rows), block 32
  const float* x;
  float* y;
  const float* w;
  int32_t n;
  float eps;
};

struct RopeArgs {  // grid (n_head, n_tokens), block head_dim / 2
  float* x;         // [n_tokens][n_head][head_dim]
  const float* cs;  // [n_tokens][head_dim / 2][cos, sin]
  int32_t n_head, head_dim, neox;
};

struct KvStoreArgs {  // grid (n_tokens), block 256
  const float* k;  // [n_tokens][n_head_kv * head_dim]
  const float* v;
  uint16_t* kc;  // f16 [layer][block][slot][kv head][head_dim]
  uint16_t* vc;
  BatchView b;
  int32_t n_head_kv, head_dim, n_blocks, layer, block_tokens;
};

struct AttentionArgs {  // one wave per (head, token); grid (n_head, n_tokens), block 32
  const float* q;  // [n_tokens][n_head][head_dim]
  float* out;
  const uint16_t* kc;
  const uint16_t* vc;
  BatchView b;
  int32_t n_head, n_head_kv, head_dim, n_blocks, layer, block_tokens;
  float scale;
};

// Activations for a weight type's matmul: Q8 (int8 values, f32 scale per 32) or rounded f32 values.
struct QuantizeArgs {  // one work-item per block of `block` values; grid (ceil(n_in / block / 64), rows), block 64
  const float* x;  // [rows][n_in]
  int8_t* xq;      // [rows][n_in]            (Q8_0 / Q8_K)
  float* xd;       // [rows][n_in / 32]       (Q8_0 / Q8_K; Q8_K's scale repeated per 32)
  float* xf;       // [rows][n_in]            (F16 / BF16: the value rounded to that type)
  int32_t n_in, act;  // act: 0 Q8_0, 1 Q8_K, 2 F16, 3 BF16
};

// y[z][r] = W_e(z) x[z / x_div] for output rows r and z over grid.y; W_e = the matrix of expert ids[z]
// of a stack (ids null: matrix 0). One wave per 4 output rows; grid (ceil(n_out / 32), n_z), block 256.
struct MatmulArgs {
  const uint8_t* w;
  const int32_t* ids;
  const int8_t* xq;  // quantized weight types
  const float* xd;
  const float* xf;   // float weight types
  float* y;          // [n_z][n_out]
  int64_t row_bytes, mat_stride;
  int32_t n_in, n_out, x_div, wtype;
};

// Batch (prefill) products on gfx12 WMMA: y[t][r] = W x[t] for t < n_tok, quantized W dequantized to
// f16 per tile, x rounded to f16, f32 sums. Block 128 (4 waves) per 64 output rows x 64 tokens;
// grid (ceil(n_out / 64), ceil(n_tok / 64)). n_in a multiple of 32.
// Expert-grouped (pairs not null, MoE prefill): the (token, slot) pairs sorted by expert (moe_group);
// y[z] = W_e x[z / x_div] for the pairs z of expert e = pairs[starts[e] .. starts[e + 1]); grid
// (ceil(n_out / 64), n_expert * expert_tiles), expert_tiles = ceil(most pairs of one expert / 64).
struct WmmaMatmulArgs {
  const uint8_t* w;
  const float* x;  // [n_tok][n_in] (grouped: [pairs / x_div][n_in])
  float* y;        // [n_tok][n_out] (grouped: [pairs][n_out])
  const int32_t* pairs;
  const int32_t* starts;
  int64_t row_bytes, mat_stride;
  int32_t n_in, n_out, n_tok, wtype, x_div, expert_tiles;
};

// The MoE's (token, slot) pairs z (ids[z]: the expert) sorted by expert, in z order within one:
// pairs[starts[e] .. starts[e + 1]). One block; grid (1), block 256.
struct MoeGroupArgs {
  const int32_t* ids;  // [n_pairs]
  int32_t* pairs;      // [n_pairs]
  int32_t* starts;     // [n_expert + 1]
  int32_t n_pairs, n_expert;
};

struct EltArgs {  // y[i] (op)= x[i % bn] over n values; grid (ceil(n / 256)) (x y split), block 256
  float* y;
  const float* x;
  int64_t n, bn;
};

struct GatherArgs {  // out[i] = x[out_rows[i]]; grid (n_out), block 256
  const float* x;
  float* out;
  BatchView b;
  int32_t n_embd, n_out;
};

struct RouteArgs {  // one wave per token; grid (n_tokens), block 32
  const float* logits;  // [n_tokens][n_expert]
  int32_t* ids;         // [n_tokens][k]
  float* w;
  int32_t n_expert, k;
};

struct MoeSumArgs {  // x[t][i] += sum_j w[t][j] y[t * k + j][i]; grid (ceil(n_tokens * n_embd / 256)), block 256
  float* x;
  const float* y;
  const float* w;
  int64_t n;
  int32_t n_embd, k;
};

}  // namespace tessera::hip
