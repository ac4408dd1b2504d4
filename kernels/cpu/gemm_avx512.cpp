// AVX-512 (VNNI) GEMM for every quantized type: 16 weight rows are unpacked once into a tile of u8 codes
// with one 32-bit lane per row, then each group of up to 8 tokens runs vpdpbusd with the token's 4
// activation bytes broadcast: 16 rows x 4 values per instruction, each unpacked weight reused by all
// tokens. Per sub-block the int32 sums are scaled into f32 accumulators:
//   y += a * (dx * sum(u * q)) - c * (dx * sum(q)).
// Also the F32 / F16 / BF16 kernels (f32 FMA on converted values).
#include <immintrin.h>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/scratch.h"
#include "kernels/cpu/unpack.h"

namespace tessera::ops {
namespace {

constexpr int R = 16;    // rows per tile = int32 lanes of a zmm
constexpr int TMAX = 8;  // tokens per register block

inline int32_t load_i32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// acc[t] (16 rows) for T tokens over all sub-blocks of the tile.
template <int T, int SUB>
void tile_block(const uint8_t* q, const float* ta, const float* tc, int64_t n_sub, const int8_t* const* xq,
                const float* dx, const float* dxs, float* y, int64_t y_stride, __mmask16 store_mask) {
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t s = 0; s < n_sub; ++s) {
    __m512i ai[T];
    for (int t = 0; t < T; ++t) ai[t] = _mm512_setzero_si512();
    const uint8_t* qs = q + s * SUB * R;
    for (int kk = 0; kk < SUB / 4; ++kk) {
      const __m512i w = _mm512_load_si512(qs + kk * 64);
      for (int t = 0; t < T; ++t)
        ai[t] = _mm512_dpbusd_epi32(ai[t], w, _mm512_set1_epi32(load_i32(xq[t] + s * SUB + kk * 4)));
    }
    const __m512 va = _mm512_load_ps(ta + s * R);
    const __m512 vc = _mm512_load_ps(tc + s * R);
    for (int t = 0; t < T; ++t) {
      const __m512 scale = _mm512_mul_ps(va, _mm512_set1_ps(dx[t * n_sub + s]));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ai[t]), scale, acc[t]);
      acc[t] = _mm512_fnmadd_ps(vc, _mm512_set1_ps(dxs[t * n_sub + s]), acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(y + t * y_stride, store_mask, acc[t]);
}

template <int SUB>
void gemm_q8_tiles(const MatmulArgs& args) {
  const WeightView& w = *args.w;
  const PreparedActs& x = *args.x;
  const int64_t n = w.n_in, n_sub = n / SUB, n_tok = x.n_tokens;
  // tile: q [n/4][16][4], a, c [n_sub][16]; tmp row: u [n], a, c [n_sub]
  uint8_t* q = cpu_kernel_scratch(0, static_cast<size_t>(n) * R + 2 * sizeof(float) * n_sub * R);
  float* ta = reinterpret_cast<float*>(q + n * R);
  float* tc = ta + n_sub * R;
  uint8_t* tmp = cpu_kernel_scratch(1, static_cast<size_t>(n) + 2 * sizeof(float) * n_sub + 64);
  float* tmpa = reinterpret_cast<float*>(tmp + (n + 63) / 64 * 64);
  float* tmpc = tmpa + n_sub;
  // per token and sub-block: dx and dx * sum(q)
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
  for (int64_t r0 = args.row_begin; r0 < args.row_end; r0 += R) {
    const int nrows = static_cast<int>(args.row_end - r0 < R ? args.row_end - r0 : R);
    unpack_tile<R>(w.type, w.data, w.row_bytes, r0, nrows, n, q, ta, tc, tmp, tmpa, tmpc);
    const __mmask16 mask = static_cast<__mmask16>((1u << nrows) - 1);
    for (int64_t t0 = 0; t0 < n_tok; t0 += TMAX) {
      const int nt = static_cast<int>(n_tok - t0 < TMAX ? n_tok - t0 : TMAX);
      const int8_t* xq[TMAX];
      for (int t = 0; t < nt; ++t) xq[t] = x.qs + (t0 + t) * n;
      const float* d0 = dx + t0 * n_sub;
      const float* s0 = dxs + t0 * n_sub;
      float* y = args.y + t0 * args.y_stride + r0;
      switch (nt) {
        case 1: tile_block<1, SUB>(q, ta, tc, n_sub, xq, d0, s0, y, args.y_stride, mask); break;
        case 2: tile_block<2, SUB>(q, ta, tc, n_sub, xq, d0, s0, y, args.y_stride, mask); break;
        case 3: tile_block<3, SUB>(q, ta, tc, n_sub, xq, d0, s0, y, args.y_stride, mask); break;
        case 4: tile_block<4, SUB>(q, ta, tc, n_sub, xq, d0, s0, y, args.y_stride, mask); break;
        case 5: tile_block<5, SUB>(q, ta, tc, n_sub, xq, d0, s0, y, args.y_stride, mask); break;
        case 6: tile_block<6, SUB>(q, ta, tc, n_sub, xq, d0, s0, y, args.y_stride, mask); break;
        case 7: tile_block<7, SUB>(q, ta, tc, n_sub, xq, d0, s0, y, args.y_stride, mask); break;
        default: tile_block<8, SUB>(q, ta, tc, n_sub, xq, d0, s0, y, args.y_stride, mask); break;
      }
    }
  }
}

// ---- float weights ----

// 16 values (masked) of a row of weights or activations as f32.
template <GgmlType W>
inline __m512 load16(const void* p, int64_t i, __mmask16 m) {
  if constexpr (W == GgmlType::F32) {
    return _mm512_maskz_loadu_ps(m, static_cast<const float*>(p) + i);
  } else if constexpr (W == GgmlType::F16) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(p) + i));
  } else {
    const __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(p) + i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
  }
}

template <GgmlType W, int RR, int T>
void float_block(const uint8_t* const* wr, const void* const* xr, int64_t n, float* y, int64_t y_stride) {
  __m512 acc[RR][T];
  for (int r = 0; r < RR; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (n - i)) - 1);
    __m512 xv[T];
    for (int t = 0; t < T; ++t) xv[t] = load16<W>(xr[t], i, m);
    for (int r = 0; r < RR; ++r) {
      const __m512 wv = load16<W>(wr[r], i, m);
      for (int t = 0; t < T; ++t) acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
    }
  }
  for (int r = 0; r < RR; ++r)
    for (int t = 0; t < T; ++t) y[t * y_stride + r] = _mm512_reduce_add_ps(acc[r][t]);
}

template <GgmlType W>
void gemm_float(const MatmulArgs& args) {
  const WeightView& w = *args.w;
  const PreparedActs& x = *args.x;
  const int64_t n = w.n_in;
  constexpr int RR = 4, T = 4;
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
      if (nr == RR && nt == T) float_block<W, RR, T>(wr, xr, n, y, args.y_stride);
      else if (nr == RR) float_block<W, RR, 1>(wr, xr, n, y, args.y_stride);
      else if (nt == T) float_block<W, 1, T>(wr, xr, n, y, args.y_stride);
      else float_block<W, 1, 1>(wr, xr, n, y, args.y_stride);
      t0 += nt;
    }
    r0 += nr;
  }
}

}  // namespace

void gemm_q8_tiles_avx512(const MatmulArgs& a) {
  if (unpack_sub(a.w->type) == 16) gemm_q8_tiles<16>(a);
  else gemm_q8_tiles<32>(a);
}

void gemm_float_avx512(const MatmulArgs& a) {
  switch (a.w->type) {
    case GgmlType::F32: gemm_float<GgmlType::F32>(a); break;
    case GgmlType::F16: gemm_float<GgmlType::F16>(a); break;
    default: gemm_float<GgmlType::BF16>(a); break;
  }
}

}  // namespace tessera::ops
