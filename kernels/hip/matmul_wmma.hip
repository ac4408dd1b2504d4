// Batch (prefill) products on the gfx12 matrix cores: Y = X W^T as 16x16x16 WMMA tiles
// (v_wmma_f32_16x16x16_f16), A = 16 tokens x 16 inputs of X rounded to f16, B = 16 inputs x 16 output
// rows of W dequantized to f16 (unpack16 in common.h: v = d q + m, every type matmul_q8 reads), f32
// sums. A block of 4 waves owns 64 output rows x 64 tokens: per step of 32 inputs it stages the
// weight tile (one 16-value chunk per work-item) and the activation tile in LDS, then each wave
// multiplies its 16 rows by the 4 token tiles (the weight fragment read once, used 4 times).
// Operand layouts (gfx12, wave32; the emulator's are the same, hip_emu.cpp): lane l holds row l % 16
// of A and column l % 16 of B, 8 values from k = 8 (l / 16); D: column l % 16, rows 8 (l / 16) + i.
// Rows or tokens past the end are staged as zeros and not stored. Activations must stay within f16's
// range (|x| <= 65504, as in any f16 GEMM path); larger ones are clamped to it. Expert-grouped (MoE prefill): the
// block's tokens are 64 of one expert's (token, slot) pairs (moe_group sorts them), its matrix that
// expert's.
// gfx1151 / gfx1100 have no gfx12 WMMA: the kernel is empty there and the host never launches it
// (HipStream uses matmul_q8 on them).
#include "kernels/hip/common.h"

namespace tessera::hip {

constexpr int kWmmaRows = 64, kWmmaTokens = 64, kWmmaK = 32;
constexpr int kWmmaPitch = kWmmaK + 8;  // f16 per LDS row: 80 bytes keeps 16-byte fragment reads aligned

#if !defined(TESSERA_HIP_DEVICE) || defined(__gfx1200__) || defined(__gfx1201__)
#define TESSERA_HIP_WMMA 1
#endif

TESSERA_KERNEL(matmul_wmma, WmmaMatmulArgs) {
#if defined(TESSERA_HIP_WMMA)
  __shared__ _Float16 ws[kWmmaRows][kWmmaPitch];
  __shared__ _Float16 xs[kWmmaTokens][kWmmaPitch];
  const int tid = (int)threadIdx.x, wave = tid / kWave, lane = tid % kWave;
  const int64_t row0 = (int64_t)blockIdx.x * kWmmaRows;
  // the block's tokens: dense tok0 .. tok0 + n_t; grouped pairs[p0 .. p0 + n_t] of expert e
  int64_t tok0 = (int64_t)blockIdx.y * kWmmaTokens, n_t = a.n_tok - tok0, p0 = 0;
  const uint8_t* w = a.w;
  if (a.pairs) {
    const int e = (int)blockIdx.y / a.expert_tiles;
    p0 = a.starts[e] + (int64_t)(blockIdx.y % a.expert_tiles) * kWmmaTokens;
    n_t = a.starts[e + 1] - p0;
    w += e * a.mat_stride;
  }
  if (n_t <= 0) return;  // the whole block: an expert with fewer pairs
  if (n_t > kWmmaTokens) n_t = kWmmaTokens;
  // the staging work-item: row / token tid / 2, values 16 (tid % 2) .. of each step
  const int sr = tid / 2, sh = (tid % 2) * 16;
  const bool w_in = row0 + sr < a.n_out, x_in = sr < n_t;
  const uint8_t* wrow = w + (row0 + sr) * a.row_bytes;
  const int64_t xr = !x_in ? 0 : a.pairs ? a.pairs[p0 + sr] / a.x_div : tok0 + sr;
  const float* xrow = a.x + xr * (int64_t)a.n_in;
  // token tiles with any token, and whether this wave's 16 rows exist (both uniform per wave)
  const int n_mt = (int)((n_t + 15) / 16);
  const bool rows_in = row0 + wave * 16 < a.n_out;
  hip_float8 acc[4];
#pragma unroll
  for (int t = 0; t < 4; ++t) acc[t] = hip_float8{0, 0, 0, 0, 0, 0, 0, 0};
  const int fr = lane % 16, fk = 8 * (lane / 16);  // fragment row / column and k offset
  for (int k0 = 0; k0 < a.n_in; k0 += kWmmaK) {
    if (w_in) {
      int8_t q[16];
      float d, m;
      unpack16(a.wtype, wrow, (k0 + sh) / 16, q, &d, &m);
      for (int i = 0; i < 16; ++i) ws[sr][sh + i] = (_Float16)(d * (float)q[i] + m);
    } else {
      for (int i = 0; i < 16; ++i) ws[sr][sh + i] = (_Float16)0.0f;
    }
    for (int i = 0; i < 16; ++i)  // saturated: past f16's range a value clamps (finite) instead of becoming inf
      xs[sr][sh + i] = x_in ? (_Float16)__builtin_fminf(__builtin_fmaxf(xrow[k0 + sh + i], -65504.0f), 65504.0f) : (_Float16)0.0f;
    __syncthreads();
    if (rows_in) {
      for (int kk = 0; kk < kWmmaK; kk += 16) {
        hip_half8 b;
        for (int i = 0; i < 8; ++i) b[i] = ws[wave * 16 + fr][kk + fk + i];
#pragma unroll
        for (int t = 0; t < 4; ++t) {  // unrolled: acc stays in registers
          if (t >= n_mt) break;
          hip_half8 x;
          for (int i = 0; i < 8; ++i) x[i] = xs[t * 16 + fr][kk + fk + i];
          acc[t] = __builtin_amdgcn_wmma_f32_16x16x16_f16_w32_gfx12(x, b, acc[t]);
        }
      }
    }
    __syncthreads();
  }
  const int64_t row = row0 + wave * 16 + fr;
  if (!rows_in || row >= a.n_out) return;
#pragma unroll
  for (int t = 0; t < 4; ++t)
    for (int i = 0; i < 8; ++i) {
      const int j = t * 16 + fk + i;  // the block's token
      if (j >= n_t) continue;
      const int64_t yr = a.pairs ? a.pairs[p0 + j] : tok0 + j;
      a.y[yr * a.n_out + row] = acc[t][i];
    }
#else
  (void)a;
#endif
}

// Counting sort of the pairs by expert, stable (z order within an expert): work-item e counts and
// then lists expert e's pairs (n_expert <= 512, as route_topk).
TESSERA_KERNEL(moe_group, MoeGroupArgs) {
  __shared__ int32_t cnt[513];
  const int tid = (int)threadIdx.x;
  for (int e = tid; e < a.n_expert; e += (int)blockDim.x) {
    int c = 0;
    for (int z = 0; z < a.n_pairs; ++z) c += a.ids[z] == e;
    cnt[e] = c;
  }
  __syncthreads();
  if (tid == 0) {
    int s = 0;
    for (int e = 0; e < a.n_expert; ++e) {
      a.starts[e] = s;
      const int c = cnt[e];
      cnt[e] = s;
      s += c;
    }
    a.starts[a.n_expert] = s;
  }
  __syncthreads();
  for (int e = tid; e < a.n_expert; e += (int)blockDim.x) {
    int p = cnt[e];
    for (int z = 0; z < a.n_pairs; ++z)
      if (a.ids[z] == e) a.pairs[p++] = z;
  }
}

}  // namespace tessera::hip
