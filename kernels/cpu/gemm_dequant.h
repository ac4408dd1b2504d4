// Quantized weights with unquantized (f32) activations: tiles of rows are decoded to f32 in scratch,
// then the float GEMM of the same ISA runs on them. Used for Q4_1 / Q5_1, where int8 activations
// (Q8_1) add more noise than the weights' own rounding on real models (issue 15: SmolLM2's logits are
// ~4x closer to the float64 oracle this way). Included by each ISA's kernel file (internal linkage).
#pragma once
#include "kernels/cpu/scratch.h"
#include "kernels/cpu/unpack.h"

namespace tessera::ops {
namespace {

template <void (*FloatGemm)(const MatmulArgs&)>
void gemm_dequant_f32(const MatmulArgs& args) {
  const WeightView& w = *args.w;
  const int64_t n = w.n_in, n_sub = n / unpack_sub(w.type);
  constexpr int64_t R = 16;  // rows per tile: 16 x n floats stay in L2 while every token reads them
  float* tile = reinterpret_cast<float*>(cpu_kernel_scratch(0, sizeof(float) * static_cast<size_t>(R * n)));
  uint8_t* u = cpu_kernel_scratch(1, static_cast<size_t>(n) + 2 * sizeof(float) * static_cast<size_t>(n_sub) + 64);
  float* a = reinterpret_cast<float*>(u + (n + 63) / 64 * 64);
  float* c = a + n_sub;
  const int sub = unpack_sub(w.type);
  for (int64_t r0 = args.row_begin; r0 < args.row_end; r0 += R) {
    const int64_t nrows = args.row_end - r0 < R ? args.row_end - r0 : R;
    for (int64_t r = 0; r < nrows; ++r) {
      unpack_row(w.type, w.data + static_cast<size_t>(r0 + r) * w.row_bytes, n, u, a, c);
      float* f = tile + r * n;
      for (int64_t s = 0; s < n_sub; ++s)
        for (int j = 0; j < sub; ++j) f[s * sub + j] = a[s] * static_cast<float>(u[s * sub + j]) - c[s];
    }
    const WeightView fw{GgmlType::F32, reinterpret_cast<const uint8_t*>(tile), n, nrows,
                        sizeof(float) * static_cast<size_t>(n)};
    MatmulArgs fa = args;
    fa.w = &fw;
    fa.y = args.y + r0;
    fa.row_begin = 0;
    fa.row_end = nrows;
    FloatGemm(fa);
  }
}

}  // namespace
}  // namespace tessera::ops
