// The 256-bit int8 tile GEMM shared by gemm_avx2.cpp (maddubs, no VNNI) and gemm_avxvnni.cpp
// (vpdpbusd, AVX-VNNI): 8 weight rows per tile (one 32-bit lane each), up to 4 tokens per register block.
// Included once per ISA translation unit; internal linkage only.
#pragma once
#include <immintrin.h>

#include "kernels/cpu/scratch.h"
#include "kernels/cpu/unpack.h"

namespace tessera::ops {
namespace {

constexpr int R8 = 8;
constexpr int T4 = 4;

inline int32_t load_i32_avx2(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

template <int T, int SUB>
void tile_block_avx2(const uint8_t* q, const float* ta, const float* tc, int64_t n_sub, const int8_t* const* xq,
                     const float* dx, const float* dxs, float* y, int64_t y_stride, int nrows) {
  __m256 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
#if !defined(__AVXVNNI__)
  const __m256i ones16 = _mm256_set1_epi16(1);
  const __m256i bias = _mm256_set1_epi8(static_cast<char>(0x80));
#endif
  for (int64_t s = 0; s < n_sub; ++s) {
    __m256i ai[T];
    for (int t = 0; t < T; ++t) ai[t] = _mm256_setzero_si256();
    const uint8_t* qs = q + s * SUB * R8;
    for (int kk = 0; kk < SUB / 4; ++kk) {
      const __m256i w = _mm256_load_si256(reinterpret_cast<const __m256i*>(qs + kk * 32));
#if defined(__AVXVNNI__)
      for (int t = 0; t < T; ++t)
        ai[t] = _mm256_dpbusd_avx_epi32(ai[t], w, _mm256_set1_epi32(load_i32_avx2(xq[t] + s * SUB + kk * 4)));
#else
      // signed weights u - 128 through maddubs(|w|, x * sign(w)): no saturation as |w| <= 128, |x| <= 127
      const __m256i ws = _mm256_xor_si256(w, bias);
      const __m256i wabs = _mm256_abs_epi8(ws);
      for (int t = 0; t < T; ++t) {
        const __m256i xs = _mm256_sign_epi8(_mm256_set1_epi32(load_i32_avx2(xq[t] + s * SUB + kk * 4)), ws);
        ai[t] = _mm256_add_epi32(ai[t], _mm256_madd_epi16(_mm256_maddubs_epi16(wabs, xs), ones16));
      }
#endif
    }
    const __m256 va = _mm256_load_ps(ta + s * R8);
#if defined(__AVXVNNI__)
    const __m256 vc = _mm256_load_ps(tc + s * R8);
#else
    // the sums are of (u - 128) * q: move 128 * a * sum(q) into the c term
    const __m256 vc = _mm256_fnmadd_ps(_mm256_set1_ps(128.0f), va, _mm256_load_ps(tc + s * R8));
#endif
    for (int t = 0; t < T; ++t) {
      const __m256 scale = _mm256_mul_ps(va, _mm256_set1_ps(dx[t * n_sub + s]));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ai[t]), scale, acc[t]);
      acc[t] = _mm256_fnmadd_ps(vc, _mm256_set1_ps(dxs[t * n_sub + s]), acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) {
    if (nrows == R8) {
      _mm256_storeu_ps(y + t * y_stride, acc[t]);
    } else {
      alignas(32) float tmp[R8];
      _mm256_store_ps(tmp, acc[t]);
      for (int r = 0; r < nrows; ++r) y[t * y_stride + r] = tmp[r];
    }
  }
}

template <int SUB>
void gemm_q8_tiles_256(const MatmulArgs& args) {
  const WeightView& w = *args.w;
  const PreparedActs& x = *args.x;
  const int64_t n = w.n_in, n_sub = n / SUB, n_tok = x.n_tokens;
  uint8_t* q = cpu_kernel_scratch(0, static_cast<size_t>(n) * R8 + 2 * sizeof(float) * n_sub * R8);
  float* ta = reinterpret_cast<float*>(q + n * R8);
  float* tc = ta + n_sub * R8;
  uint8_t* tmp = cpu_kernel_scratch(1, static_cast<size_t>(n) + 2 * sizeof(float) * n_sub + 64);
  float* tmpa = reinterpret_cast<float*>(tmp + (n + 63) / 64 * 64);
  float* tmpc = tmpa + n_sub;
  float* dx = reinterpret_cast<float*>(cpu_kernel_scratch(2, sizeof(float) * 2 * n_sub * n_tok));
  float* dxs = dx + n_sub * n_tok;
  for (int64_t t = 0; t < n_tok; ++t) {
    for (int64_t s = 0; s < n_sub; ++s) {
      const int64_t i0 = s * SUB;
      const float d = x.d[t * (n / 32) + i0 / 32];
      const int32_t* s16 = x.s + t * (n / 16) + i0 / 16;
      const int32_t sum = SUB == 32 ? s16[0] + s16[1] : s16[0];
      dx[t * n_sub + s] = d;
      dxs[t * n_sub + s] = d * static_cast<float>(sum);
    }
  }
  for (int64_t r0 = args.row_begin; r0 < args.row_end; r0 += R8) {
    const int nrows = static_cast<int>(args.row_end - r0 < R8 ? args.row_end - r0 : R8);
    unpack_tile<R8>(w.type, w.data, w.row_bytes, r0, nrows, n, q, ta, tc, tmp, tmpa, tmpc);
    for (int64_t t0 = 0; t0 < n_tok; t0 += T4) {
      const int nt = static_cast<int>(n_tok - t0 < T4 ? n_tok - t0 : T4);
      const int8_t* xq[T4];
      for (int t = 0; t < nt; ++t) xq[t] = x.qs + (t0 + t) * n;
      const float* d0 = dx + t0 * n_sub;
      const float* s0 = dxs + t0 * n_sub;
      float* y = args.y + t0 * args.y_stride + r0;
      switch (nt) {
        case 1: tile_block_avx2<1, SUB>(q, ta, tc, n_sub, xq, d0, s0, y, args.y_stride, nrows); break;
        case 2: tile_block_avx2<2, SUB>(q, ta, tc, n_sub, xq, d0, s0, y, args.y_stride, nrows); break;
        case 3: tile_block_avx2<3, SUB>(q, ta, tc, n_sub, xq, d0, s0, y, args.y_stride, nrows); break;
        default: tile_block_avx2<4, SUB>(q, ta, tc, n_sub, xq, d0, s0, y, args.y_stride, nrows); break;
      }
    }
  }
}

}  // namespace
}  // namespace tessera::ops
