// Matrix-vector products of the decode step (and, for now, of prefill: one wave per output row and
// activation row; 4 rows per wave). Quantized weights: activations quantized once to Q8 (int8 + f32 scale per 32, the
// reference's rounding), 16 values at a time dotted as int8 with the dot4 instruction:
// sum_i (d q_i + m) xq_i xd = xd (d * dot(q, xq) + m * sum(xq)). Float weights: f32 products with the
// activations rounded to the weight's activation type.
#include "kernels/hip/common.h"

namespace tessera::hip {

enum : int32_t { kActQ8_0 = 0, kActQ8_K = 1, kActF16 = 2, kActBF16 = 3 };

// One work-item per block (32 values for Q8_0, 256 for Q8_K, 32 for the f16/bf16 rounding).
TESSERA_KERNEL(quantize_act, QuantizeArgs) {
  const int bs = a.act == kActQ8_K ? 256 : 32;
  const int64_t blk = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (blk * bs >= a.n_in) return;
  const int64_t r = blockIdx.y, o = r * a.n_in + blk * bs;
  const float* x = a.x + o;
  if (a.act == kActF16 || a.act == kActBF16) {
    for (int j = 0; j < bs && blk * bs + j < a.n_in; ++j)
      a.xf[o + j] = a.act == kActF16 ? fp16_to_fp32(fp32_to_fp16(x[j])) : bf16_to_fp32(fp32_to_bf16(x[j]));
    return;
  }
  float amax = 0.0f, mxv = 0.0f;  // Q8_K keeps the sign of the first largest magnitude
  for (int j = 0; j < bs; ++j) {
    const float ax = __builtin_fabsf(x[j]);
    if (ax > amax) {
      amax = ax;
      mxv = x[j];
    }
  }
  float d = 0.0f;
  if (a.act == kActQ8_0) {
    d = fp16_to_fp32(fp32_to_fp16(amax / 127.0f));
    const float inv = amax != 0.0f ? 127.0f / amax : 0.0f;
    for (int j = 0; j < bs; ++j) a.xq[o + j] = (int8_t)__builtin_rintf(x[j] * inv);
  } else if (amax != 0.0f) {
    const float iscale = -127.0f / mxv;
    for (int j = 0; j < bs; ++j) a.xq[o + j] = (int8_t)__builtin_fminf(__builtin_rintf(iscale * x[j]), 127.0f);
    d = 1.0f / iscale;
  } else {
    for (int j = 0; j < bs; ++j) a.xq[o + j] = 0;
  }
  for (int j = 0; j < bs / 32; ++j) a.xd[o / 32 + j] = d;
}

__device__ inline const uint8_t* weight_row(const MatmulArgs& a, int64_t z, int64_t row) {
  const int64_t e = a.ids ? a.ids[z] : 0;
  return a.w + e * a.mat_stride + row * a.row_bytes;
}

__device__ inline int pack4(const int8_t* p) {
  return (int)((uint32_t)(uint8_t)p[0] | (uint32_t)(uint8_t)p[1] << 8 | (uint32_t)(uint8_t)p[2] << 16 | (uint32_t)(uint8_t)p[3] << 24);
}

// Each wave computes kRows consecutive output rows (the activations are loaded once for them).
constexpr int kRows = 4;

TESSERA_KERNEL(matmul_q8, MatmulArgs) {
  const int64_t row0 = ((int64_t)blockIdx.x * (blockDim.x / kWave) + threadIdx.x / kWave) * kRows, z = blockIdx.y;
  const int lane = (int)(threadIdx.x % kWave);
  if (row0 >= a.n_out) return;  // whole waves leave together
  const int nr = (int)(a.n_out - row0 < kRows ? a.n_out - row0 : kRows);
  const int64_t xr = z / a.x_div;
  const int8_t* xq = a.xq + xr * a.n_in;
  const float* xd = a.xd + xr * (a.n_in / 32);
  float acc[kRows] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int64_t c = lane; c < a.n_in / 16; c += kWave) {
    int x4[4], xs = 0;
    for (int g = 0; g < 4; ++g) {
      x4[g] = pack4(xq + c * 16 + g * 4);
      xs = hip_dot4_i8(0x01010101, x4[g], xs);
    }
    for (int r = 0; r < nr; ++r) {
      int8_t q[16];
      float d, m;
      unpack16(a.wtype, weight_row(a, z, row0 + r), c, q, &d, &m);
      int dot = 0;
      for (int g = 0; g < 4; ++g) dot = hip_dot4_i8(pack4(q + g * 4), x4[g], dot);
      acc[r] += xd[c / 2] * (d * (float)dot + m * (float)xs);
    }
  }
  wave_sums(acc, nr);
  if (lane == 0)
    for (int r = 0; r < nr; ++r) a.y[z * a.n_out + row0 + r] = acc[r];
}

TESSERA_KERNEL(matmul_f, MatmulArgs) {
  const int64_t row0 = ((int64_t)blockIdx.x * (blockDim.x / kWave) + threadIdx.x / kWave) * kRows, z = blockIdx.y;
  const int lane = (int)(threadIdx.x % kWave);
  if (row0 >= a.n_out) return;
  const int nr = (int)(a.n_out - row0 < kRows ? a.n_out - row0 : kRows);
  const float* x = a.xf + (z / a.x_div) * a.n_in;
  float acc[kRows] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int64_t i = lane; i < a.n_in; i += kWave)
    for (int r = 0; r < nr; ++r) acc[r] += float_at(a.wtype, weight_row(a, z, row0 + r), i) * x[i];
  wave_sums(acc, nr);
  if (lane == 0)
    for (int r = 0; r < nr; ++r) a.y[z * a.n_out + row0 + r] = acc[r];
}

}  // namespace tessera::hip
