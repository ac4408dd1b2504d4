// AVX2 (no VNNI: maddubs) int8 tile GEMM for every quantized type (see gemm_avx2_body.h), and the
// F32 / F16 / BF16 kernels with 256-bit FMA.
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/gemm_avx2_body.h"
#include "kernels/cpu/gemm_driver.h"
#include "kernels/cpu/gemm_dequant.h"
#include "kernels/cpu/simd256.h"

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

// RR rows x T tokens of y: the block kernel of gemm_float_rows.
struct FloatBlock256 {
  template <GgmlType W, int RR, int T>
  static void block(const uint8_t* const* wr, const void* const* xr, int64_t n, float* y, int64_t y_stride);
};

template <GgmlType W, int RR, int T>
void FloatBlock256::block(const uint8_t* const* wr, const void* const* xr, int64_t n, float* y, int64_t y_stride) {
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
      float s = hsum256(acc[r][t]);
      for (int64_t j = i; j < n; ++j) s += load1<W>(wr[r], j) * load1<W>(xr[t], j);
      y[t * y_stride + r] = s;
    }
  }
}

}  // namespace

void gemm_q8_tiles_avx2(const MatmulArgs& a) {
  switch (int16_group(max_code(a.w->type))) {
    case 2: gemm_q8_tiles_256<16, 2>(a); break;  // Q6_K (16-value sub-blocks)
    case 4: gemm_q8_tiles_256<32, 4>(a); break;
    case 8: gemm_q8_tiles_256<32, 8>(a); break;
    default: gemm_q8_tiles_256<32, 0>(a); break;
  }
}

void gemm_float_avx2(const MatmulArgs& a) {
  gemm_float_by_type<2, FloatBlock256>(a);
}

void gemm_dequant_f32_avx2(const MatmulArgs& a) { gemm_dequant_f32<gemm_float_avx2>(a); }

}  // namespace tessera::ops
