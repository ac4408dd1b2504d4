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

// attention_f16: one wave per (head, token); grid (n_head, n_tokens), block 32.
// attention_split_f16: one wave per (key range, head, token); grid (n_split * n_head, n_tokens), block 32.
struct AttentionArgs {
  const float* q;  // [n_tokens][n_head][head_dim]
  float* out;
  const uint16_t* kc;
  const uint16_t* vc;
  BatchView b;
  int32_t n_head, n_head_kv, head_dim, n_blocks, layer, block_tokens;
  float scale;
  // split only: keys s * range .. s * range + range - 1 in block s of a head
  float* part;        // [n_tokens][n_head][n_split][max, sum, output[head_dim]]
  uint32_t* counter;  // [n_tokens][n_head] blocks done, 0 between launches
  int32_t n_split, range;
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

// ---- fused decode kernels (kernels/hip/fused.hip): each block prepares the activation row it reads in
// dynamic shared memory (normed first where asked), as quantize_act would have written it.

// Shared bytes of one activation region of n values: act 0/1 (Q8_0 / Q8_K): int8 codes then an f32
// scale per 32; act 2/3/4 (F16 / BF16 / F32): the (rounded) f32 values.
constexpr uint32_t act_align(uint32_t n) { return (n + 15u) / 16u * 16u; }
constexpr uint32_t act_region_bytes(int32_t act, uint32_t n) {
  return act <= 1 ? act_align(n) + act_align(n / 32u * 4u) : act_align(n * 4u);
}

// One matrix of a fused decode GEMV: rows [0, n_out) of W x (+ bias) into y, in blocks [block0, block0 + ceil(n_out / 32)).
struct FusedMat {
  const uint8_t* w;
  float* y;
  const float* bias;  // null: none
  int64_t row_bytes;
  int32_t n_out, wtype, slot, block0;  // slot: the activation region it reads
};

// y_j = W_j x for up to 3 matrices sharing one activation row x (q, k, v; gate, up): one wave per 4
// rows, grid (sum of ceil(n_out / 32)), block 256, dynamic shared = the slots' regions in order.
// norm: x is rmsnorm'ed with it first (block 0 writes the normed row to norm_y); res: res += y of matrix 0;
// ids: after every block, the last one picks the top-k of matrix 0's y (the router's logits) as
// route_topk does, then resets *counter to 0. glu: a dense FFN's gate and up with the SwiGLU.
struct GemvFusedArgs {
  FusedMat m[3];
  const float* x;
  const uint32_t* x_row;  // null: row 0 of x; else x's row *x_row (the batch's output row)
  const float* norm;
  float* norm_y;
  float* res;
  int32_t* ids;
  float* rw;
  uint32_t* counter;
  int32_t n_mat, n_in, n_slots, k;
  int32_t glu;  // 1: m[0] gate, m[1] up of the same rows: y0 = silu(y0) * y1 (y1 kept); blocks over m[0] only
  int32_t slot_act[3];
  float eps;
};

// QK-norm (optional), RoPE and the KV store of one layer's q and k heads in one launch: blocks x <
// n_head_a work on a's heads, the others on b's (k); with kc set, b's heads and v's are stored into the
// KV blocks. One wave per (head, token); grid (n_head_a + n_head_b, n_tokens), block 32.
struct HeadsArgs {
  float* xa;
  const float* norm_a;  // null: no QK-norm
  float* xb;
  const float* norm_b;
  const float* v;
  uint16_t* kc;  // null: no store
  uint16_t* vc;
  const float* cs;
  BatchView b;
  int32_t n_head_a, rope_a, n_head_b, rope_b, head_dim, neox, n_blocks, layer, block_tokens;
  float eps;
};

// The routed experts of decode: g[z] = silu(Wgate_e h) * Wup_e h for pairs z = (token t, slot j),
// e = ids[z], h = h[t]. Grid (ceil(n_ff / 32), pairs), block 256; shared: gate's region, then up's when
// its activation type differs (up_slot 1).
struct MoeGateUpArgs {
  const uint8_t* wg;
  const uint8_t* wu;
  const int32_t* ids;
  const float* h;  // [n_tokens][n_in]
  float* g;        // [pairs][n_ff]
  int64_t g_row_bytes, g_stride, u_row_bytes, u_stride;
  int32_t g_type, u_type, g_act, u_act, up_slot, n_in, n_ff, k;
};

// x[t] += sum_j w[t][j] Wdown_e(t,j) g[t * k + j]: grid (ceil(n_embd / 32), n_tokens), block 256; shared:
// the token's k rows of g as one region of k * n_ff values.
struct MoeDownArgs {
  const uint8_t* w;
  const int32_t* ids;
  const float* rw;
  const float* g;
  float* x;
  int64_t row_bytes, stride;
  int32_t wtype, act, n_ff, n_embd, k;
};

}  // namespace tessera::hip
