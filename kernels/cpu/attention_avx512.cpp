// AVX-512 attention kernel: query rows that share one KV head are scored against a block of 32 keys
// (K is stored transposed per block, so each dimension is two 16-lane f16 loads and two FMAs per
// row), then an online softmax and the V accumulation in 32-dimension slices; rows go in groups of 8
// so accumulators stay in registers.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/kernel_args.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/simd_avx512.h"

namespace tessera::ops::detail {
namespace {

constexpr int B = kKvBlock;  // keys per block (a multiple of 16)
constexpr int kPrefetchBlocks = 2;

using simd::exp512;
using simd::load_half16;

// Lanes of a 16-key slice starting at key j0 that a row with highest position `last` may see.
inline __mmask16 visible(int j0, int32_t last) {
  const int n = last - j0 + 1;
  if (n >= 16) return 0xFFFF;
  if (n <= 0) return 0;
  return static_cast<__mmask16>((1u << n) - 1);
}

// Running state of the rows of one call: f16-rounded scaled queries, unnormalised outputs, running
// max and sum of the online softmax.
struct RowState {
  alignas(64) float q[kMaxRows][256];
  alignas(64) float o[kMaxRows][256];
  alignas(64) float p[kMaxRows][B];  // probabilities of the current block
  float m[kMaxRows], l[kMaxRows], corr[kMaxRows];
  int32_t last[kMaxRows];
};

// One key block for G <= 8 rows starting at row r0: scores, online-softmax update, V accumulation.
// Both 16-key halves are scored together so each broadcast q value feeds two FMAs.
template <int G>
void block_step(RowState& st, int r0, const uint16_t* kb, const uint16_t* vb, int j0, int nb, int hd,
                const char* pf_k, const char* pf_v) {
  __m512 s0[G], s1[G];
  for (int g = 0; g < G; ++g) s0[g] = s1[g] = _mm512_setzero_ps();
  if (nb > 16) {
    for (int d = 0; d < hd; ++d) {
      if (pf_k) {  // one cache line of a later block's K and V per dimension: a steady DRAM stream
        _mm_prefetch(pf_k + d * 64, _MM_HINT_T0);
        _mm_prefetch(pf_v + d * 64, _MM_HINT_T0);
      }
      const __m512 k0 = load_half16(kb + d * B), k1 = load_half16(kb + d * B + 16);
      for (int g = 0; g < G; ++g) {
        const __m512 qv = _mm512_set1_ps(st.q[r0 + g][d]);
        s0[g] = _mm512_fmadd_ps(qv, k0, s0[g]);
        s1[g] = _mm512_fmadd_ps(qv, k1, s1[g]);
      }
    }
  } else {
    for (int d = 0; d < hd; ++d) {
      const __m512 k0 = load_half16(kb + d * B);
      for (int g = 0; g < G; ++g) s0[g] = _mm512_fmadd_ps(_mm512_set1_ps(st.q[r0 + g][d]), k0, s0[g]);
    }
  }

  // Online softmax: new running max, rescale factor for what was accumulated, block probabilities.
  const __m512 ninf = _mm512_set1_ps(-INFINITY);
  for (int g = 0; g < G; ++g) {
    const int r = r0 + g;
    const __m512 a = _mm512_mask_mov_ps(ninf, visible(j0, st.last[r]), s0[g]);
    const __m512 b = nb > 16 ? _mm512_mask_mov_ps(ninf, visible(j0 + 16, st.last[r]), s1[g]) : ninf;
    const float bm = _mm512_reduce_max_ps(_mm512_max_ps(a, b));
    if (bm == -INFINITY) {  // the row sees none of these keys
      st.corr[r] = 1.0f;
      _mm512_store_ps(st.p[r], _mm512_setzero_ps());
      _mm512_store_ps(st.p[r] + 16, _mm512_setzero_ps());
      continue;
    }
    const float mnew = std::max(st.m[r], bm);
    st.corr[r] = std::exp(st.m[r] - mnew);
    const __m512 mv = _mm512_set1_ps(mnew);
    const __m512 ea = exp512(_mm512_sub_ps(a, mv)), eb = exp512(_mm512_sub_ps(b, mv));
    _mm512_store_ps(st.p[r], ea);
    _mm512_store_ps(st.p[r] + 16, eb);
    st.l[r] = st.l[r] * st.corr[r] + _mm512_reduce_add_ps(_mm512_add_ps(ea, eb));
    st.m[r] = mnew;
  }

  // o = o * corr + sum_j p[j] * V[j], 32 dimensions at a time (16 for a remainder).
  int d = 0;
  for (; d + 32 <= hd; d += 32) {
    __m512 a0[G], a1[G];
    for (int g = 0; g < G; ++g) {
      const __m512 c = _mm512_set1_ps(st.corr[r0 + g]);
      a0[g] = _mm512_mul_ps(_mm512_load_ps(st.o[r0 + g] + d), c);
      a1[g] = _mm512_mul_ps(_mm512_load_ps(st.o[r0 + g] + d + 16), c);
    }
    for (int j = 0; j < nb; ++j) {
      const uint16_t* vr = vb + static_cast<size_t>(j) * hd + d;
      const __m512 v0 = load_half16(vr), v1 = load_half16(vr + 16);
      for (int g = 0; g < G; ++g) {
        const __m512 pv = _mm512_set1_ps(st.p[r0 + g][j]);
        a0[g] = _mm512_fmadd_ps(pv, v0, a0[g]);
        a1[g] = _mm512_fmadd_ps(pv, v1, a1[g]);
      }
    }
    for (int g = 0; g < G; ++g) {
      _mm512_store_ps(st.o[r0 + g] + d, a0[g]);
      _mm512_store_ps(st.o[r0 + g] + d + 16, a1[g]);
    }
  }
  for (; d < hd; d += 16) {
    __m512 a0[G];
    for (int g = 0; g < G; ++g) a0[g] = _mm512_mul_ps(_mm512_load_ps(st.o[r0 + g] + d), _mm512_set1_ps(st.corr[r0 + g]));
    for (int j = 0; j < nb; ++j) {
      const __m512 v0 = load_half16(vb + static_cast<size_t>(j) * hd + d);
      for (int g = 0; g < G; ++g) a0[g] = _mm512_fmadd_ps(_mm512_set1_ps(st.p[r0 + g][j]), v0, a0[g]);
    }
    for (int g = 0; g < G; ++g) _mm512_store_ps(st.o[r0 + g] + d, a0[g]);
  }
}

using StepFn = void (*)(RowState&, int, const uint16_t*, const uint16_t*, int, int, int, const char*, const char*);
constexpr StepFn kSteps[9] = {nullptr,         block_step<1>, block_step<2>, block_step<3>, block_step<4>,
                              block_step<5>, block_step<6>, block_step<7>, block_step<8>};

void attend(const AttentionArgs& a, const AttnRows& rows) {
  const int hd = a.head_dim, R = rows.n_rows;
  RowState st;
  const __m512 scale = _mm512_set1_ps(a.scale);
  int32_t last_max = 0;
  for (int r = 0; r < R; ++r) {
    for (int d = 0; d < hd; d += 16) {
      // llama.cpp converts Q to f16 for K·Q; do the same rounding
      const __m256i h = _mm512_cvtps_ph(_mm512_loadu_ps(rows.q[r] + d), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      _mm512_store_ps(st.q[r] + d, _mm512_mul_ps(_mm512_cvtph_ps(h), scale));
      _mm512_store_ps(st.o[r] + d, _mm512_setzero_ps());
    }
    st.m[r] = -INFINITY;
    st.l[r] = 0.0f;
    st.last[r] = rows.last[r];
    last_max = std::max(last_max, rows.last[r]);
  }
  const int n_keys = std::min(last_max + 1, rows.key_end);
  const uint16_t* k_head = a.k_cache + static_cast<size_t>(rows.kv_head) * a.head_stride;
  const uint16_t* v_head = a.v_cache + static_cast<size_t>(rows.kv_head) * a.head_stride;
  // While a block computes, the first row group prefetches the block kPrefetchBlocks ahead, one
  // cache line per dimension (a K or V block of one head is head_dim lines of 64 bytes).
  const int last_block = (n_keys - 1) / B;
  const bool can_prefetch = a.block_elems * sizeof(uint16_t) == static_cast<size_t>(hd) * 64;
  for (int j0 = rows.key_begin; j0 < n_keys; j0 += B) {
    const size_t blk = static_cast<size_t>(rows.blocks[j0 / B]) * a.block_elems;
    const int nb = std::min(B, n_keys - j0);
    const char* pf_k = nullptr;
    const char* pf_v = nullptr;
    if (can_prefetch && j0 / B + kPrefetchBlocks <= last_block) {
      const size_t off = static_cast<size_t>(rows.blocks[j0 / B + kPrefetchBlocks]) * a.block_elems;
      pf_k = reinterpret_cast<const char*>(k_head + off);
      pf_v = reinterpret_cast<const char*>(v_head + off);
    }
    // rows in groups of up to 8 while the block is hot in L1
    for (int r0 = 0; r0 < R; r0 += 8) {
      kSteps[std::min(8, R - r0)](st, r0, k_head + blk, v_head + blk, j0, nb, hd, pf_k, pf_v);
      pf_k = pf_v = nullptr;
    }
  }

  for (int r = 0; r < R; ++r) {
    if (rows.part_ml) {  // split-K: unnormalised output, max and sum for the merge
      rows.part_ml[2 * r] = st.m[r];
      rows.part_ml[2 * r + 1] = st.l[r];
      for (int d = 0; d < hd; d += 16) _mm512_storeu_ps(rows.out[r] + d, _mm512_load_ps(st.o[r] + d));
      continue;
    }
    const __m512 inv = _mm512_set1_ps(st.l[r] > 0.0f ? 1.0f / st.l[r] : 0.0f);
    for (int d = 0; d < hd; d += 16) _mm512_storeu_ps(rows.out[r] + d, _mm512_mul_ps(_mm512_load_ps(st.o[r] + d), inv));
  }
}

}  // namespace

void attend_rows_avx512(const AttentionArgs& a, const AttnRows& rows) { attend(a, rows); }

}  // namespace tessera::ops::detail
