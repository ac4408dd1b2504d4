// AVX2 (no VNNI: maddubs) int8 tile GEMM for every quantized type (see gemm_avx2_body.h), and the
// F32 / F16 / BF16 kernels with 256-bit FMA.
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/gemm_avx2_body.h"

namespace tessera::ops {
namespace {

// 8 values of a row of weights or activations as f32 (n - i >= 8).
template <GgmlType W>
inline __m256 load8(const void* p, int64_t i) {
  if constexpr (W == GgmlType::F32) {
    return _mm256_loadu_ps(static_cast<const float*>(p) + i);
  } else if constexpr (W == GgmlType::F16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(p) + i)));
  } else {
    const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(p) + i)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  }
}

template <GgmlType W>
inline float load1(const void* p, int64_t i) {
  if constexpr (W == GgmlType::F32) {
    return static_cast<const float*>(p)[i];
  } else if constexpr (W == GgmlType::F16) {
    return _cvtsh_ss(static_cast<const uint16_t*>(p)[i]);
  } else {
    return unpack_f32_bits(static_cast<uint32_t>(static_cast<const uint16_t*>(p)[i]) << 16);
  }
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <GgmlType W, int RR, int T>
void float_block(const uint8_t* const* wr, const void* const* xr, int64_t n, float* y, int64_t y_stride) {
  __m256 acc[RR][T];
  for (int r = 0; r < RR; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 xv[T];
    for (int t = 0; t < T; ++t) xv[t] = load8<W>(xr[t], i);
    for (int r = 0; r < RR; ++r) {
      const __m256 wv = load8<W>(wr[r], i);
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);
    }
  }
  for (int r = 0; r < RR; ++r) {
    for (int t = 0; t < T; ++t) {
      float s = hsum(acc[r][t]);
      for (int64_t j = i; j < n; ++j) s += load1<W>(wr[r], j) * load1<W>(xr[t], j);
      y[t * y_stride + r] = s;
    }
  }
}

template <GgmlType W>
void gemm_float(const MatmulArgs& args) {
  const WeightView& w = *args.w;
  const PreparedActs& x = *args.x;
  const int64_t n = w.n_in;
  constexpr int RR = 4, T = 2;
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

void gemm_q8_tiles_avx2(const MatmulArgs& a) {
  if (unpack_sub(a.w->type) == 16) gemm_q8_tiles_256<16>(a);
  else gemm_q8_tiles_256<32>(a);
}

void gemm_float_avx2(const MatmulArgs& a) {
  switch (a.w->type) {
    case GgmlType::F32: gemm_float<GgmlType::F32>(a); break;
    case GgmlType::F16: gemm_float<GgmlType::F16>(a); break;
    default: gemm_float<GgmlType::BF16>(a); break;
  }
}

}  // namespace tessera::ops
