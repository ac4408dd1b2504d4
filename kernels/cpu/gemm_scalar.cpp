// Portable (no SIMD intrinsics) CPU kernels for machines without AVX2: the same unpacked int8 tiles
// as the SIMD kernels with plain integer loops, and f32 dot products for the float types.
#include "gguf/half.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/gemm_dequant.h"
#include "kernels/cpu/scratch.h"
#include "kernels/cpu/unpack.h"

namespace tessera::ops {
namespace {

constexpr int RS = 8;

template <int SUB>
void gemm_q8_tiles_plain(const MatmulArgs& args) {
  const WeightView& w = *args.w;
  const PreparedActs& x = *args.x;
  const int64_t n = w.n_in, n_sub = n / SUB;
  uint8_t* q = cpu_kernel_scratch(0, static_cast<size_t>(n) * RS + 2 * sizeof(float) * n_sub * RS);
  float* ta = reinterpret_cast<float*>(q + n * RS);
  float* tc = ta + n_sub * RS;
  uint8_t* tmp = cpu_kernel_scratch(1, static_cast<size_t>(n) + 2 * sizeof(float) * n_sub + 64);
  float* tmpa = reinterpret_cast<float*>(tmp + (n + 63) / 64 * 64);
  float* tmpc = tmpa + n_sub;
  for (int64_t r0 = args.row_begin; r0 < args.row_end; r0 += RS) {
    const int nrows = static_cast<int>(args.row_end - r0 < RS ? args.row_end - r0 : RS);
    unpack_tile<RS>(w.type, w.data, w.row_bytes, r0, nrows, n, q, ta, tc, tmp, tmpa, tmpc);
    for (int64_t t = 0; t < x.n_tokens; ++t) {
      const int8_t* xq = x.qs + t * n;
      float acc[RS] = {};
      for (int64_t s = 0; s < n_sub; ++s) {
        int32_t isum[RS] = {};
        for (int k = 0; k < SUB / 4; ++k) {
          const uint8_t* qk = q + (s * SUB / 4 + k) * RS * 4;
          const int8_t* xk = xq + s * SUB + 4 * k;
          for (int r = 0; r < RS; ++r)
            for (int j = 0; j < 4; ++j) isum[r] += static_cast<int32_t>(qk[r * 4 + j]) * xk[j];
        }
        const int64_t i0 = s * SUB;
        const float dx = x.d[t * (n / 32) + i0 / 32];
        const int32_t* s16 = x.s + t * (n / 16) + i0 / 16;
        const float dxs = dx * static_cast<float>(SUB == 32 ? s16[0] + s16[1] : s16[0]);
        for (int r = 0; r < RS; ++r)
          acc[r] += ta[s * RS + r] * dx * static_cast<float>(isum[r]) - tc[s * RS + r] * dxs;
      }
      for (int r = 0; r < nrows; ++r) args.y[t * args.y_stride + r0 + r] = acc[r];
    }
  }
}

float weight_value(GgmlType t, const uint8_t* row, int64_t i) {
  if (t == GgmlType::F32) return reinterpret_cast<const float*>(row)[i];
  const uint16_t h = reinterpret_cast<const uint16_t*>(row)[i];
  return t == GgmlType::F16 ? fp16_to_fp32(h) : bf16_to_fp32(h);
}

}  // namespace

void gemm_q8_tiles_scalar(const MatmulArgs& a) {
  if (unpack_sub(a.w->type) == 16) gemm_q8_tiles_plain<16>(a);
  else gemm_q8_tiles_plain<32>(a);
}

void gemm_float_scalar(const MatmulArgs& args) {
  const WeightView& w = *args.w;
  const PreparedActs& x = *args.x;
  const int64_t n = w.n_in;
  for (int64_t r = args.row_begin; r < args.row_end; ++r) {
    const uint8_t* row = w.data + static_cast<size_t>(r) * w.row_bytes;
    for (int64_t t = 0; t < x.n_tokens; ++t) {
      float acc[4] = {0, 0, 0, 0};
      for (int64_t i = 0; i < n; ++i) {
        float xv;
        if (x.type == ActType::F32) xv = x.f32[t * x.f32_stride + i];
        else if (x.type == ActType::F16) xv = fp16_to_fp32(x.h16[t * n + i]);
        else xv = bf16_to_fp32(x.h16[t * n + i]);
        acc[i & 3] += weight_value(w.type, row, i) * xv;
      }
      args.y[t * args.y_stride + r] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    }
  }
}

void gemm_dequant_f32_scalar(const MatmulArgs& a) { gemm_dequant_f32<gemm_float_scalar>(a); }

}  // namespace tessera::ops
