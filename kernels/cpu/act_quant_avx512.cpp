// AVX-512 activation quantization, bit-identical to kernels/ref/act_quant.cpp (tests compare them):
// Q8_0 / Q8_1 (per 32: f16 d = amax/127, q = round-half-even(x * 127/amax)), Q8_K (per 256: signed
// max, q = min(127, round-half-even(x * -127/max)), d = 1/iscale) and F16; other types fall back.
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/ref/act_quant.h"

namespace tessera::ops {
namespace {

// q = round-half-even(v) (the MXCSR default), then the 16 lane values as int8 (saturating; the
// values are within [-127, 127] by construction) and their sum.
inline int32_t store_q16(__m512 v, int8_t* q) {
  const __m512i i = _mm512_cvtps_epi32(v);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtsepi32_epi8(i));
  return _mm512_reduce_add_epi32(i);
}

void row_q8_0(const float* x, int64_t n, int8_t* qs, float* d, int32_t* s, int32_t* s32) {
  const __m512 sign_off = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  for (int64_t b = 0; b < n / 32; ++b) {
    const __m512 x0 = _mm512_loadu_ps(x + 32 * b), x1 = _mm512_loadu_ps(x + 32 * b + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_and_ps(x0, sign_off), _mm512_and_ps(x1, sign_off)));
    const float scale = amax / 127.0f;
    const float inv = amax != 0.0f ? 127.0f / amax : 0.0f;
    d[b] = _cvtsh_ss(_cvtss_sh(scale, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    const __m512 vi = _mm512_set1_ps(inv);
    s[2 * b] = store_q16(_mm512_mul_ps(x0, vi), qs + 32 * b);
    s[2 * b + 1] = store_q16(_mm512_mul_ps(x1, vi), qs + 32 * b + 16);
    s32[b] = s[2 * b] + s[2 * b + 1];
  }
}

void row_q8_K(const float* x, int64_t n, int8_t* qs, float* d, int32_t* s, int32_t* s32) {
  const __m512 sign_off = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  for (int64_t b = 0; b < n / 256; ++b) {
    const float* xb = x + 256 * b;
    __m512 m = _mm512_setzero_ps();
    for (int j = 0; j < 256; j += 16) m = _mm512_max_ps(m, _mm512_and_ps(_mm512_loadu_ps(xb + j), sign_off));
    const float amax = _mm512_reduce_max_ps(m);
    float scale = 0.0f;
    if (amax == 0.0f) {
      std::memset(qs + 256 * b, 0, 256);
      for (int j = 0; j < 16; ++j) s[16 * b + j] = 0;
    } else {
      // the first value whose magnitude is amax gives the sign (as the scalar loop's strict '>')
      float max = 0.0f;
      for (int j = 0; j < 256; j += 16) {
        const __mmask16 hit = _mm512_cmp_ps_mask(_mm512_and_ps(_mm512_loadu_ps(xb + j), sign_off), _mm512_set1_ps(amax), _CMP_EQ_OQ);
        if (hit) {
          max = xb[j + __builtin_ctz(hit)];
          break;
        }
      }
      const float iscale = -127.0f / max;
      const __m512 vi = _mm512_set1_ps(iscale);
      for (int j = 0; j < 16; ++j) {
        __m512i i = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xb + 16 * j), vi));
        i = _mm512_min_epi32(i, _mm512_set1_epi32(127));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(qs + 256 * b + 16 * j), _mm512_cvtsepi32_epi8(i));
        s[16 * b + j] = _mm512_reduce_add_epi32(i);
      }
      scale = 1.0f / iscale;
    }
    for (int j = 0; j < 8; ++j) {
      d[8 * b + j] = scale;
      s32[8 * b + j] = s[16 * b + 2 * j] + s[16 * b + 2 * j + 1];
    }
  }
}

}  // namespace

void quantize_activations_avx512(ActType type, const float* x, int64_t x_stride, int64_t n_in, int64_t t_begin,
                                 int64_t t_end, int8_t* qs, float* d, int32_t* s, int32_t* s32, uint16_t* h16) {
  if (type == ActType::BF16 || type == ActType::F32 || (type == ActType::F16 && n_in % 16 != 0)) {
    quantize_activations(type, x, x_stride, n_in, t_begin, t_end, qs, d, s, s32, h16);
    return;
  }
  for (int64_t t = t_begin; t < t_end; ++t) {
    const float* xt = x + t * x_stride;
    if (type == ActType::F16) {
      for (int64_t i = 0; i < n_in; i += 16)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(h16 + t * n_in + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(xt + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    } else if (type == ActType::Q8_K) {
      row_q8_K(xt, n_in, qs + t * n_in, d + t * (n_in / 32), s + t * (n_in / 16), s32 + t * (n_in / 32));
    } else {
      row_q8_0(xt, n_in, qs + t * n_in, d + t * (n_in / 32), s + t * (n_in / 16), s32 + t * (n_in / 32));
    }
  }
}

}  // namespace tessera::ops
