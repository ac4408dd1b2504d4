// Fused single-token kernels, AVX2 (maddubs) (see gemv_avx2_body.h), and the Q4_1 / Q5_1 kernels with
// f32 activations.
#include <cstring>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/gemv_avx2_body.h"

namespace tessera::ops {
namespace {

// Byte j of the result is 16 where bit j of `bits` (16 of them) is set, else 0.
inline __m128i fifth_bits16(uint32_t bits) {
  const __m128i h = _mm_shuffle_epi8(_mm_set1_epi16(static_cast<int16_t>(bits)),
                                     _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
  const __m128i bit = _mm_set1_epi64x(static_cast<int64_t>(0x8040201008040201ULL));
  return _mm_and_si128(_mm_cmpeq_epi8(_mm_and_si128(h, bit), bit), _mm_set1_epi8(16));
}

// Q4_1 / Q5_1 with f32 activations (their CPU default: issue 15), one token: per 32-value block
// d * sum(q x) + m * sum(x), the codes widened u8 -> i32 -> f32 in registers; the block sums of x once
// per call. The float path costs ~3x the int8 one per value, so it is compute-bound well below memcpy.
template <bool FIVE>
void gemv_q41_f32(const MatmulArgs& args) {
  const WeightView& w = *args.w;
  const float* x = args.x->f32;
  const int64_t nb = w.n_in / 32;
  float* xsum = reinterpret_cast<float*>(cpu_kernel_scratch(3, sizeof(float) * static_cast<size_t>(nb)));
  for (int64_t b = 0; b < nb; ++b) {
    const float* xb = x + 32 * b;
    const __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(xb), _mm256_loadu_ps(xb + 8)),
                                   _mm256_add_ps(_mm256_loadu_ps(xb + 16), _mm256_loadu_ps(xb + 24)));
    xsum[b] = hsum256(s);
  }
  const size_t bsize = FIVE ? sizeof(block_q5_1) : sizeof(block_q4_1);
  const __m128i m4 = _mm_set1_epi8(15);
  auto widen = [](__m128i u8) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(u8)); };
  for (int64_t r = args.row_begin; r < args.row_end; ++r) {
    const uint8_t* blk = w.data + static_cast<size_t>(r) * w.row_bytes;
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    float mterm = 0.0f;
    for (int64_t b = 0; b < nb; ++b, blk += bsize) {
      uint16_t dm[2];
      std::memcpy(dm, blk, 4);
      const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + (FIVE ? 8 : 4)));
      __m128i lo = _mm_and_si128(q, m4), hi = _mm_and_si128(_mm_srli_epi16(q, 4), m4);  // values 0-15, 16-31
      if constexpr (FIVE) {
        uint32_t qh;
        std::memcpy(&qh, blk + 4, 4);
        lo = _mm_or_si128(lo, fifth_bits16(qh & 0xffff));
        hi = _mm_or_si128(hi, fifth_bits16(qh >> 16));
      }
      const float* xb = x + 32 * b;
      __m256 s = _mm256_mul_ps(widen(lo), _mm256_loadu_ps(xb));
      s = _mm256_fmadd_ps(widen(_mm_srli_si128(lo, 8)), _mm256_loadu_ps(xb + 8), s);
      s = _mm256_fmadd_ps(widen(hi), _mm256_loadu_ps(xb + 16), s);
      s = _mm256_fmadd_ps(widen(_mm_srli_si128(hi, 8)), _mm256_loadu_ps(xb + 24), s);
      acc[b & 1] = _mm256_fmadd_ps(s, _mm256_set1_ps(_cvtsh_ss(dm[0])), acc[b & 1]);
      mterm += _cvtsh_ss(dm[1]) * xsum[b];
    }
    args.y[r] = hsum256(_mm256_add_ps(acc[0], acc[1])) + mterm;
  }
}

}  // namespace

void gemv_q4_K_avx2(const MatmulArgs& a) { gemv_qk45_256<false>(a); }
void gemv_q5_K_avx2(const MatmulArgs& a) { gemv_qk45_256<true>(a); }
void gemv_q6_K_avx2(const MatmulArgs& a) { gemv_q6k_256(a); }
void gemv_q8_0_avx2(const MatmulArgs& a) { gemv_b32_256<GgmlType::Q8_0>(a); }
void gemv_q4_0_avx2(const MatmulArgs& a) { gemv_b32_256<GgmlType::Q4_0>(a); }
void gemv_q5_0_avx2(const MatmulArgs& a) { gemv_b32_256<GgmlType::Q5_0>(a); }
void gemv_iq4_nl_avx2(const MatmulArgs& a) { gemv_b32_256<GgmlType::IQ4_NL>(a); }
void gemv_mxfp4_avx2(const MatmulArgs& a) { gemv_b32_256<GgmlType::MXFP4>(a); }
void gemv_q4_1_f32_avx2(const MatmulArgs& a) { gemv_q41_f32<false>(a); }
void gemv_q5_1_f32_avx2(const MatmulArgs& a) { gemv_q41_f32<true>(a); }

}  // namespace tessera::ops
