// AVX2 activation quantization, bit-identical to kernels/ref/act_quant.cpp (the conformance sweep
// compares them): Q8_0 / Q8_1 (per 32: f16 d = amax/127, q = round-half-even(x * 127/amax)), Q8_K (per
// 256: signed max, q = min(127, round-half-even(x * -127/max)), d = 1/iscale) and F16.
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/ref/act_quant.h"

namespace tessera::ops {
namespace {

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

inline int32_t hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

// 16 values already scaled: round half to even (the MXCSR default), store as int8 (the values lie in
// [-127, 127]), return their sum. `cap` clamps from above (Q8_K's 127).
inline int32_t store_q16(__m256 a, __m256 b, int8_t* q, __m256i cap) {
  const __m256i ia = _mm256_min_epi32(_mm256_cvtps_epi32(a), cap), ib = _mm256_min_epi32(_mm256_cvtps_epi32(b), cap);
  const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(ia, ib), 0xd8);  // 16 int16 in order
  const __m128i bytes = _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q), bytes);
  return hsum_epi32(_mm256_add_epi32(ia, ib));
}

void row_q8_0(const float* x, int64_t n, int8_t* qs, float* d, int32_t* s, int32_t* s32) {
  const __m256 sign_off = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256i cap = _mm256_set1_epi32(127);
  for (int64_t b = 0; b < n / 32; ++b) {
    __m256 v[4], m = _mm256_setzero_ps();
    for (int i = 0; i < 4; ++i) {
      v[i] = _mm256_loadu_ps(x + 32 * b + 8 * i);
      m = _mm256_max_ps(m, _mm256_and_ps(v[i], sign_off));
    }
    const float amax = hmax(m);
    const float scale = amax / 127.0f;
    const float inv = amax != 0.0f ? 127.0f / amax : 0.0f;
    d[b] = _cvtsh_ss(_cvtss_sh(scale, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    const __m256 vi = _mm256_set1_ps(inv);
    s[2 * b] = store_q16(_mm256_mul_ps(v[0], vi), _mm256_mul_ps(v[1], vi), qs + 32 * b, cap);
    s[2 * b + 1] = store_q16(_mm256_mul_ps(v[2], vi), _mm256_mul_ps(v[3], vi), qs + 32 * b + 16, cap);
    s32[b] = s[2 * b] + s[2 * b + 1];
  }
}

void row_q8_K(const float* x, int64_t n, int8_t* qs, float* d, int32_t* s, int32_t* s32) {
  const __m256 sign_off = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256i cap = _mm256_set1_epi32(127);
  for (int64_t b = 0; b < n / 256; ++b) {
    const float* xb = x + 256 * b;
    __m256 m = _mm256_setzero_ps();
    for (int j = 0; j < 256; j += 8) m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(xb + j), sign_off));
    const float amax = hmax(m);
    float scale = 0.0f;
    if (amax == 0.0f) {
      std::memset(qs + 256 * b, 0, 256);
      for (int j = 0; j < 16; ++j) s[16 * b + j] = 0;
    } else {
      // the first value whose magnitude is amax gives the sign (as the scalar loop's strict '>')
      float max = 0.0f;
      for (int j = 0; j < 256; ++j)
        if ((xb[j] < 0 ? -xb[j] : xb[j]) == amax) {
          max = xb[j];
          break;
        }
      const float iscale = -127.0f / max;
      const __m256 vi = _mm256_set1_ps(iscale);
      for (int j = 0; j < 16; ++j)
        s[16 * b + j] = store_q16(_mm256_mul_ps(_mm256_loadu_ps(xb + 16 * j), vi),
                                  _mm256_mul_ps(_mm256_loadu_ps(xb + 16 * j + 8), vi), qs + 256 * b + 16 * j, cap);
      scale = 1.0f / iscale;
    }
    for (int j = 0; j < 8; ++j) {
      d[8 * b + j] = scale;
      s32[8 * b + j] = s[16 * b + 2 * j] + s[16 * b + 2 * j + 1];
    }
  }
}

}  // namespace

void quantize_activations_avx2(ActType type, const float* x, int64_t x_stride, int64_t n_in, int64_t t_begin,
                               int64_t t_end, int8_t* qs, float* d, int32_t* s, int32_t* s32, uint16_t* h16) {
  if (type == ActType::BF16 || type == ActType::F32 || (type == ActType::F16 && n_in % 8 != 0)) {
    quantize_activations(type, x, x_stride, n_in, t_begin, t_end, qs, d, s, s32, h16);
    return;
  }
  for (int64_t t = t_begin; t < t_end; ++t) {
    const float* xt = x + t * x_stride;
    if (type == ActType::F16) {
      for (int64_t i = 0; i < n_in; i += 8)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(h16 + t * n_in + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(xt + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    } else if (type == ActType::Q8_K) {
      row_q8_K(xt, n_in, qs + t * n_in, d + t * (n_in / 32), s + t * (n_in / 16), s32 + t * (n_in / 32));
    } else {
      row_q8_0(xt, n_in, qs + t * n_in, d + t * (n_in / 32), s + t * (n_in / 16), s32 + t * (n_in / 32));
    }
  }
}

}  // namespace tessera::ops
