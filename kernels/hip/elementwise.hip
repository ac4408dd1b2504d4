// Row-wise and element-wise kernels: add, add_bias, swiglu, the MoE weighted sum, gather of output
// rows, embedding lookup (dequantizing the table row), RMSNorm (one wave per row) and RoPE.
#include "kernels/hip/common.h"

namespace tessera::hip {

__device__ inline int64_t elt_index() { return ((int64_t)blockIdx.y * gridDim.x + blockIdx.x) * blockDim.x + threadIdx.x; }

TESSERA_KERNEL(add_f32, EltArgs) {
  const int64_t i = elt_index();
  if (i < a.n) a.y[i] += a.x[i % a.bn];
}

TESSERA_KERNEL(swiglu_f32, EltArgs) {
  const int64_t i = elt_index();
  if (i >= a.n) return;
  const float g = a.y[i];
  a.y[i] = g / (1.0f + __builtin_expf(-g)) * a.x[i];
}

TESSERA_KERNEL(moe_sum_f32, MoeSumArgs) {
  const int64_t i = elt_index();
  if (i >= a.n) return;
  const int64_t t = i / a.n_embd, c = i % a.n_embd;
  float acc = 0.0f;
  for (int j = 0; j < a.k; ++j) acc += a.w[t * a.k + j] * a.y[(t * a.k + j) * a.n_embd + c];
  a.x[i] += acc;
}

TESSERA_KERNEL(gather_rows_f32, GatherArgs) {
  const int64_t r = a.b.words[a.b.off_out + blockIdx.x];
  for (int i = (int)threadIdx.x; i < a.n_embd; i += (int)blockDim.x) a.out[blockIdx.x * (int64_t)a.n_embd + i] = a.x[r * a.n_embd + i];
}

TESSERA_KERNEL(embed_rows, EmbedArgs) {
  const uint8_t* row = a.table + (int64_t)a.b.words[blockIdx.x] * a.row_bytes;
  float* x = a.x + (int64_t)blockIdx.x * a.n_embd;
  if (is_float_type(a.wtype)) {
    for (int i = (int)threadIdx.x; i < a.n_embd; i += (int)blockDim.x) x[i] = float_at(a.wtype, row, i);
    return;
  }
  for (int c = (int)threadIdx.x; c < a.n_embd / 16; c += (int)blockDim.x) {
    int8_t q[16];
    float d, m;
    unpack16(a.wtype, row, c, q, &d, &m);
    for (int i = 0; i < 16; ++i) x[c * 16 + i] = d * (float)q[i] + m;
  }
}

TESSERA_KERNEL(rmsnorm_f32, RmsnormArgs) {
  const float* x = a.x + (int64_t)blockIdx.x * a.n;
  float* y = a.y + (int64_t)blockIdx.x * a.n;
  float ss = 0.0f;
  for (int i = (int)threadIdx.x; i < a.n; i += kWave) ss += x[i] * x[i];
  ss = wave_sum(ss);
  const float scale = 1.0f / __builtin_sqrtf(ss / (float)a.n + a.eps);
  for (int i = (int)threadIdx.x; i < a.n; i += kWave) y[i] = x[i] * scale * a.w[i];
}

// Pairs (i, i + hd/2) (NEOX) or (2i, 2i + 1) (NORM) rotated by the host's cos/sin of the token's angle i.
TESSERA_KERNEL(rope_f32, RopeArgs) {
  const int half = a.head_dim / 2, i = (int)threadIdx.x;
  if (i >= half) return;
  const int64_t t = blockIdx.y;
  float* x = a.x + (t * a.n_head + blockIdx.x) * a.head_dim;
  const float c = a.cs[(t * half + i) * 2], s = a.cs[(t * half + i) * 2 + 1];
  const int i0 = a.neox ? i : 2 * i, i1 = a.neox ? i + half : 2 * i + 1;
  const float x0 = x[i0], x1 = x[i1];
  x[i0] = x0 * c - x1 * s;
  x[i1] = x0 * s + x1 * c;
}

}  // namespace tessera::hip
