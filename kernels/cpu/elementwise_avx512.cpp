// AVX-512 versions of the element-wise ops that show up in profiles (SwiGLU's exponential).
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/simd_avx512.h"

#include <cmath>

namespace tessera::ops::detail {

// g = g / (1 + e^-g) * u
void swiglu_avx512(float* g, const float* u, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 x = _mm512_loadu_ps(g + i);
    const __m512 e = simd::exp512(_mm512_sub_ps(_mm512_setzero_ps(), x));
    _mm512_storeu_ps(g + i, _mm512_mul_ps(_mm512_div_ps(x, _mm512_add_ps(one, e)), _mm512_loadu_ps(u + i)));
  }
  for (; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

}  // namespace tessera::ops::detail
