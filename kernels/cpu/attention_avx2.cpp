// AVX2 + F16C attention kernel, the 256-bit twin of attention_avx512.cpp: query rows that share one KV
// head are scored against a block of 32 keys (K stored transposed per block: each dimension is four
// 8-lane f16 loads), then an online softmax and the V accumulation in 16-dimension slices. Rows go in
// groups of 4 so the accumulators fit the 16 ymm registers.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/simd_avx2.h"
#include "kernels/kernel_args.h"

namespace tessera::ops::detail {
namespace {

constexpr int B = kKvBlock;  // keys per block (a multiple of 8)
constexpr int kGroup = 4;    // rows per pass over a block

using simd::exp256;

inline __m256 load_half8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// Running state of the rows of one call: f16-rounded scaled queries, unnormalised outputs, running
// max and sum of the online softmax, and the current block's scores / probabilities.
struct RowState {
  alignas(32) float q[kMaxRows][256];
  alignas(32) float o[kMaxRows][256];
  alignas(32) float p[kMaxRows][B];
  float m[kMaxRows], l[kMaxRows], corr[kMaxRows];
  int32_t last[kMaxRows];
};

// Scores of G rows against 16 keys (key slices h0, h0 + 8) of one block.
template <int G>
void score16(RowState& st, int r0, const uint16_t* kb, int h0, int hd) {
  __m256 s0[G], s1[G];
  for (int g = 0; g < G; ++g) s0[g] = s1[g] = _mm256_setzero_ps();
  for (int d = 0; d < hd; ++d) {
    const __m256 k0 = load_half8(kb + d * B + h0), k1 = load_half8(kb + d * B + h0 + 8);
    for (int g = 0; g < G; ++g) {
      const __m256 qv = _mm256_broadcast_ss(&st.q[r0 + g][d]);
      s0[g] = _mm256_fmadd_ps(qv, k0, s0[g]);
      s1[g] = _mm256_fmadd_ps(qv, k1, s1[g]);
    }
  }
  for (int g = 0; g < G; ++g) {
    _mm256_store_ps(st.p[r0 + g] + h0, s0[g]);
    _mm256_store_ps(st.p[r0 + g] + h0 + 8, s1[g]);
  }
}

// One key block for G <= kGroup rows starting at row r0: scores, online-softmax update, V accumulation.
template <int G>
void block_step(RowState& st, int r0, const uint16_t* kb, const uint16_t* vb, int j0, int nb, int hd) {
  score16<G>(st, r0, kb, 0, hd);
  if (nb > 16) score16<G>(st, r0, kb, 16, hd);

  // Online softmax: new running max, rescale factor for what was accumulated, block probabilities.
  const __m256 ninf = _mm256_set1_ps(-INFINITY);
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const int n_slices = (nb + 7) / 8;
  for (int g = 0; g < G; ++g) {
    const int r = r0 + g;
    const __m256i limit = _mm256_set1_epi32(st.last[r] - j0 + 1);  // keys [0, limit) of the block are visible
    __m256 s[4];
    __m256 mx = ninf;
    for (int i = 0; i < 4; ++i) {
      if (i >= n_slices) {
        s[i] = ninf;
        continue;
      }
      const __m256 vis = _mm256_castsi256_ps(_mm256_cmpgt_epi32(limit, _mm256_add_epi32(iota, _mm256_set1_epi32(8 * i))));
      s[i] = _mm256_blendv_ps(ninf, _mm256_load_ps(st.p[r] + 8 * i), vis);
      mx = _mm256_max_ps(mx, s[i]);
    }
    const float bm = hmax(mx);
    if (bm == -INFINITY) {  // the row sees none of these keys
      st.corr[r] = 1.0f;
      for (int i = 0; i < 4; ++i) _mm256_store_ps(st.p[r] + 8 * i, _mm256_setzero_ps());
      continue;
    }
    const float mnew = std::max(st.m[r], bm);
    st.corr[r] = std::exp(st.m[r] - mnew);
    const __m256 mv = _mm256_set1_ps(mnew);
    __m256 sum = _mm256_setzero_ps();
    for (int i = 0; i < 4; ++i) {
      const __m256 e = i < n_slices ? exp256(_mm256_sub_ps(s[i], mv)) : _mm256_setzero_ps();
      _mm256_store_ps(st.p[r] + 8 * i, e);
      sum = _mm256_add_ps(sum, e);
    }
    st.l[r] = st.l[r] * st.corr[r] + hsum(sum);
    st.m[r] = mnew;
  }

  // o = o * corr + sum_j p[j] * V[j], 16 dimensions at a time (8 for a remainder).
  int d = 0;
  for (; d + 16 <= hd; d += 16) {
    __m256 a0[G], a1[G];
    for (int g = 0; g < G; ++g) {
      const __m256 c = _mm256_set1_ps(st.corr[r0 + g]);
      a0[g] = _mm256_mul_ps(_mm256_load_ps(st.o[r0 + g] + d), c);
      a1[g] = _mm256_mul_ps(_mm256_load_ps(st.o[r0 + g] + d + 8), c);
    }
    for (int j = 0; j < nb; ++j) {
      const uint16_t* vr = vb + static_cast<size_t>(j) * hd + d;
      const __m256 v0 = load_half8(vr), v1 = load_half8(vr + 8);
      for (int g = 0; g < G; ++g) {
        const __m256 pv = _mm256_broadcast_ss(&st.p[r0 + g][j]);
        a0[g] = _mm256_fmadd_ps(pv, v0, a0[g]);
        a1[g] = _mm256_fmadd_ps(pv, v1, a1[g]);
      }
    }
    for (int g = 0; g < G; ++g) {
      _mm256_store_ps(st.o[r0 + g] + d, a0[g]);
      _mm256_store_ps(st.o[r0 + g] + d + 8, a1[g]);
    }
  }
  for (; d < hd; d += 8) {
    __m256 a0[G];
    for (int g = 0; g < G; ++g) a0[g] = _mm256_mul_ps(_mm256_load_ps(st.o[r0 + g] + d), _mm256_set1_ps(st.corr[r0 + g]));
    for (int j = 0; j < nb; ++j) {
      const __m256 v0 = load_half8(vb + static_cast<size_t>(j) * hd + d);
      for (int g = 0; g < G; ++g) a0[g] = _mm256_fmadd_ps(_mm256_broadcast_ss(&st.p[r0 + g][j]), v0, a0[g]);
    }
    for (int g = 0; g < G; ++g) _mm256_store_ps(st.o[r0 + g] + d, a0[g]);
  }
}

using StepFn = void (*)(RowState&, int, const uint16_t*, const uint16_t*, int, int, int);
constexpr StepFn kSteps[kGroup + 1] = {nullptr, block_step<1>, block_step<2>, block_step<3>, block_step<4>};

}  // namespace

void attend_rows_avx2(const AttentionArgs& a, const AttnRows& rows) {
  const int hd = a.head_dim, R = rows.n_rows;
  RowState st;
  const __m256 scale = _mm256_set1_ps(a.scale);
  int32_t last_max = 0;
  for (int r = 0; r < R; ++r) {
    for (int d = 0; d < hd; d += 8) {
      // llama.cpp converts Q to f16 for K·Q; do the same rounding
      const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(rows.q[r] + d), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      _mm256_store_ps(st.q[r] + d, _mm256_mul_ps(_mm256_cvtph_ps(h), scale));
      _mm256_store_ps(st.o[r] + d, _mm256_setzero_ps());
    }
    st.m[r] = -INFINITY;
    st.l[r] = 0.0f;
    st.last[r] = rows.last[r];
    last_max = std::max(last_max, rows.last[r]);
  }
  const int n_keys = std::min(last_max + 1, rows.key_end);
  const uint16_t* k_head = a.k_cache + static_cast<size_t>(rows.kv_head) * a.head_stride;
  const uint16_t* v_head = a.v_cache + static_cast<size_t>(rows.kv_head) * a.head_stride;
  for (int j0 = rows.key_begin; j0 < n_keys; j0 += B) {
    const size_t blk = static_cast<size_t>(rows.blocks[j0 / B]) * a.block_elems;
    const int nb = std::min(B, n_keys - j0);
    for (int r0 = 0; r0 < R; r0 += kGroup) kSteps[std::min(kGroup, R - r0)](st, r0, k_head + blk, v_head + blk, j0, nb, hd);
  }

  for (int r = 0; r < R; ++r) {
    if (rows.part_ml) {  // split-K: unnormalised output, max and sum for the merge
      rows.part_ml[2 * r] = st.m[r];
      rows.part_ml[2 * r + 1] = st.l[r];
      for (int d = 0; d < hd; d += 8) _mm256_storeu_ps(rows.out[r] + d, _mm256_load_ps(st.o[r] + d));
      continue;
    }
    const __m256 inv = _mm256_set1_ps(st.l[r] > 0.0f ? 1.0f / st.l[r] : 0.0f);
    for (int d = 0; d < hd; d += 8) _mm256_storeu_ps(rows.out[r] + d, _mm256_mul_ps(_mm256_load_ps(st.o[r] + d), inv));
  }
}

}  // namespace tessera::ops::detail
