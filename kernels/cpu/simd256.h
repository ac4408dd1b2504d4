// Small 256-bit helpers (AVX2, F16C) used by several SIMD kernel files. Included by each ISA's kernel
// file: internal linkage only (anonymous namespace), so copies compiled with different -m flags never merge.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace tessera::ops {
namespace {

// Sum of the 8 lanes.
inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// 32 nibbles of 16 bytes in value order: low nibbles (values 0..15), then high (16..31).
inline __m256i nibbles32(const uint8_t* qs) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(15));
}

}  // namespace
}  // namespace tessera::ops
