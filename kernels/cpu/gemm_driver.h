// The ISA-independent parts of the SIMD GEMM kernels: scratch layout of the int8 row tiles, the
// per-token activation scale terms, and the float-weight driver loop. Included by each ISA's kernel
// file; templates in an anonymous namespace only, so copies compiled with different -m flags never merge.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/kernel_args.h"
#include "gguf/ggml_types.h"
#include "kernels/cpu/scratch.h"

namespace tessera::ops {
namespace {

// Scratch of gemm_q8_tiles for R-row tiles of SUB-value sub-blocks.
struct TileScratch {
  uint8_t* q;   // tile codes [n/4][R][4]
  float* ta;    // tile a [n_sub][R]
  float* tc;    // tile c [n_sub][R]
  uint8_t* rows;  // R decoded rows before the transpose: u [R][n + 64]
  float* ra;    // [R][n_sub]
  float* rc;    // [R][n_sub]
  float* dx;    // per token and sub-block: dx [n_tok][n_sub]
  float* dxs;   // and dx * sum(q) [n_tok][n_sub]
};

// Scratch slots 0..2 laid out for R-row tiles, with dx and dxs filled from the prepared activations.
// always_inline: inlined early, the caller's tile loops get the same register allocation as hand-inlined code.
template <int R, int SUB>
[[gnu::always_inline]] inline TileScratch tile_scratch(const PreparedActs& x, int64_t n) {
  const int64_t n_sub = n / SUB, n_tok = x.n_tokens;
  TileScratch s;
  s.q = cpu_kernel_scratch(0, static_cast<size_t>(n) * R + 2 * sizeof(float) * n_sub * R);
  s.ta = reinterpret_cast<float*>(s.q + n * R);
  s.tc = s.ta + n_sub * R;
  s.rows = cpu_kernel_scratch(1, static_cast<size_t>(n + 64) * R + 2 * sizeof(float) * n_sub * R + 64);
  s.ra = reinterpret_cast<float*>(s.rows + ((n + 64) * R + 63) / 64 * 64);
  s.rc = s.ra + n_sub * R;
  s.dx = reinterpret_cast<float*>(cpu_kernel_scratch(2, sizeof(float) * 2 * n_sub * n_tok));
  s.dxs = s.dx + n_sub * n_tok;
  for (int64_t t = 0; t < n_tok; ++t) {
    for (int64_t sb = 0; sb < n_sub; ++sb) {
      const int64_t i0 = sb * SUB;
      const float d = x.d[t * (n / 32) + i0 / 32];
      const int32_t* s16 = x.s + t * (n / 16) + i0 / 16;
      const int32_t sum = SUB == 32 ? s16[0] + s16[1] : s16[0];
      s.dx[t * n_sub + sb] = d;
      s.dxs[t * n_sub + sb] = d * static_cast<float>(sum);
    }
  }
  return s;
}

// F32 / F16 / BF16 weights: blocks of 4 rows x T tokens (single rows and tokens at the edges).
// Kernel::block<W, RR, TT>(wr, xr, n, y, y_stride) computes RR rows x TT tokens of y.
template <GgmlType W, int T, class Kernel>
void gemm_float_rows(const MatmulArgs& args) {
  const WeightView& w = *args.w;
  const PreparedActs& x = *args.x;
  const int64_t n = w.n_in;
  constexpr int RR = 4;
  for (int64_t r0 = args.row_begin; r0 < args.row_end;) {
    const int nr = args.row_end - r0 >= RR ? RR : 1;
    const uint8_t* wr[RR];
    for (int r = 0; r < nr; ++r) wr[r] = w.data + static_cast<size_t>(r0 + r) * w.row_bytes;
    for (int64_t t0 = 0; t0 < x.n_tokens;) {
      const int nt = x.n_tokens - t0 >= T ? T : 1;
      const void* xr[T];
      for (int t = 0; t < nt; ++t) {
        if constexpr (W == GgmlType::F32) xr[t] = x.f32 + (t0 + t) * x.f32_stride;
        else xr[t] = x.h16 + (t0 + t) * n;
      }
      float* y = args.y + t0 * args.y_stride + r0;
      if (nr == RR && nt == T) Kernel::template block<W, RR, T>(wr, xr, n, y, args.y_stride);
      else if (nr == RR) Kernel::template block<W, RR, 1>(wr, xr, n, y, args.y_stride);
      else if (nt == T) Kernel::template block<W, 1, T>(wr, xr, n, y, args.y_stride);
      else Kernel::template block<W, 1, 1>(wr, xr, n, y, args.y_stride);
      t0 += nt;
    }
    r0 += nr;
  }
}

// The float GEMM entry: picks the weight type (F32, F16, else BF16). always_inline for the same reason.
template <int T, class Kernel>
[[gnu::always_inline]] inline void gemm_float_by_type(const MatmulArgs& a) {
  switch (a.w->type) {
    case GgmlType::F32: gemm_float_rows<GgmlType::F32, T, Kernel>(a); break;
    case GgmlType::F16: gemm_float_rows<GgmlType::F16, T, Kernel>(a); break;
    default: gemm_float_rows<GgmlType::BF16, T, Kernel>(a); break;
  }
}

}  // namespace
}  // namespace tessera::ops
