// AVX-512 attention kernel: up to 16 query rows that share one KV head are scored against 16 keys
// at a time (K is stored transposed per block, so each dimension is one 16-lane f16 load and one FMA
// per row), then an online softmax and the V accumulation in 16-dimension slices.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "engine/kv/kv_cache.h"
#include "engine/ops/attention.h"

namespace tessera::ops::detail {
namespace {

constexpr int B = engine::kKvBlock;  // keys per block (a multiple of 16)

// e^x for x <= 0 (and moderate x > 0); x = -inf gives 0. Relative error ~1e-7.
inline __m512 exp512(__m512 x) {
  const __m512 lo = _mm512_set1_ps(-103.0f);
  const __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
  x = _mm512_max_ps(x, lo);
  x = _mm512_min_ps(x, _mm512_set1_ps(88.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_maskz_mov_ps(static_cast<__mmask16>(~under), _mm512_scalef_ps(p, n));
}

inline __m512 load_half16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// Lanes of a 16-key slice starting at key j0 that a row with highest position `last` may see.
inline __mmask16 visible(int j0, int32_t last) {
  const int n = last - j0 + 1;
  if (n >= 16) return 0xFFFF;
  if (n <= 0) return 0;
  return static_cast<__mmask16>((1u << n) - 1);
}

template <int R>
void attend(const AttentionArgs& a, const AttnRows& rows) {
  const int hd = a.head_dim;
  alignas(64) float q[R][256];   // f16-rounded, scaled queries
  alignas(64) float o[R][256];   // unnormalised outputs
  alignas(64) float p[R][B];     // probabilities of the current block
  float m[R], l[R], corr[R];
  const __m512 scale = _mm512_set1_ps(a.scale);
  int32_t last_max = 0;
  for (int r = 0; r < R; ++r) {
    for (int d = 0; d < hd; d += 16) {
      // llama.cpp converts Q to f16 for K·Q; do the same rounding
      const __m256i h = _mm512_cvtps_ph(_mm512_loadu_ps(rows.q[r] + d), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      _mm512_store_ps(q[r] + d, _mm512_mul_ps(_mm512_cvtph_ps(h), scale));
      _mm512_store_ps(o[r] + d, _mm512_setzero_ps());
    }
    m[r] = -INFINITY;
    l[r] = 0.0f;
    last_max = std::max(last_max, rows.last[r]);
  }
  const int n_keys = last_max + 1;
  const size_t k_head = static_cast<size_t>(rows.kv_head) * hd * B;
  const size_t v_head = static_cast<size_t>(rows.kv_head) * B * hd;

  for (int j0 = 0; j0 < n_keys; j0 += B) {
    const size_t blk = static_cast<size_t>(rows.blocks[j0 / B]) * a.block_elems;
    const uint16_t* kb = a.k_cache + blk + k_head;  // [hd][B]
    const uint16_t* vb = a.v_cache + blk + v_head;  // [B][hd]
    const int nb = std::min(B, n_keys - j0);

    // Scores, 16 keys per slice: s[r] = sum_d q[r][d] * K[d][keys].
    __m512 s[B / 16][R];
    for (int half = 0; half < B / 16; ++half) {
      if (half * 16 >= nb) {
        for (int r = 0; r < R; ++r) s[half][r] = _mm512_set1_ps(-INFINITY);
        continue;
      }
      __m512 acc[R];
      for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
      const uint16_t* kp = kb + half * 16;
      for (int d = 0; d < hd; ++d) {
        const __m512 k = load_half16(kp + d * B);
        for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(q[r][d]), k, acc[r]);
      }
      const int jj = j0 + half * 16;
      for (int r = 0; r < R; ++r)
        s[half][r] = _mm512_mask_mov_ps(_mm512_set1_ps(-INFINITY), visible(jj, rows.last[r]), acc[r]);
    }

    // Online softmax: new running max, rescale factor for what was accumulated, block probabilities.
    for (int r = 0; r < R; ++r) {
      __m512 mx = s[0][r];
      for (int half = 1; half < B / 16; ++half) mx = _mm512_max_ps(mx, s[half][r]);
      const float bm = _mm512_reduce_max_ps(mx);
      if (bm == -INFINITY) {  // the row sees none of these keys
        corr[r] = 1.0f;
        for (int half = 0; half < B / 16; ++half) _mm512_store_ps(p[r] + half * 16, _mm512_setzero_ps());
        continue;
      }
      const float mnew = std::max(m[r], bm);
      corr[r] = std::exp(m[r] - mnew);
      const __m512 mv = _mm512_set1_ps(mnew);
      __m512 sum = _mm512_setzero_ps();
      for (int half = 0; half < B / 16; ++half) {
        const __m512 e = exp512(_mm512_sub_ps(s[half][r], mv));
        sum = _mm512_add_ps(sum, e);
        _mm512_store_ps(p[r] + half * 16, e);
      }
      l[r] = l[r] * corr[r] + _mm512_reduce_add_ps(sum);
      m[r] = mnew;
    }

    // o[r] = o[r] * corr[r] + sum_j p[r][j] * V[j], 16 dimensions at a time.
    for (int d = 0; d < hd; d += 16) {
      __m512 acc[R];
      for (int r = 0; r < R; ++r) acc[r] = _mm512_mul_ps(_mm512_load_ps(o[r] + d), _mm512_set1_ps(corr[r]));
      for (int j = 0; j < nb; ++j) {
        const __m512 v = load_half16(vb + static_cast<size_t>(j) * hd + d);
        for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(p[r][j]), v, acc[r]);
      }
      for (int r = 0; r < R; ++r) _mm512_store_ps(o[r] + d, acc[r]);
    }
  }

  for (int r = 0; r < R; ++r) {
    const __m512 inv = _mm512_set1_ps(l[r] > 0.0f ? 1.0f / l[r] : 0.0f);
    for (int d = 0; d < hd; d += 16) _mm512_storeu_ps(rows.out[r] + d, _mm512_mul_ps(_mm512_load_ps(o[r] + d), inv));
  }
}

}  // namespace

void attend_rows_avx512(const AttentionArgs& a, const AttnRows& rows) {
  switch (rows.n_rows) {
#define TESSERA_ROWS(n) \
  case n:               \
    return attend<n>(a, rows);
    TESSERA_ROWS(1) TESSERA_ROWS(2) TESSERA_ROWS(3) TESSERA_ROWS(4) TESSERA_ROWS(5) TESSERA_ROWS(6)
    TESSERA_ROWS(7) TESSERA_ROWS(8) TESSERA_ROWS(9) TESSERA_ROWS(10) TESSERA_ROWS(11) TESSERA_ROWS(12)
    TESSERA_ROWS(13) TESSERA_ROWS(14) TESSERA_ROWS(15) TESSERA_ROWS(16)
#undef TESSERA_ROWS
    default:
      return;
  }
}

}  // namespace tessera::ops::detail
