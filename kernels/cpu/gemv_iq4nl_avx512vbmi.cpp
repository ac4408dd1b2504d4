// AVX-512 VBMI few-token kernels for IQ4_NL and Q4_0 (18-byte blocks of 32 nibbles): one two-register
// byte permute (vpermt2b) gathers the 64 quant bytes of 4 blocks and a vpermb their scales, so 4 blocks
// decode with a handful of vector ops; the lane sums of 8 blocks reduce to 8 block sums in 4 ops.
// Codes u = value + z (z = 128 for IQ4_NL, 8 for Q4_0); per block sum(u*q) - z*sum(q), times the scales.
#include <immintrin.h>

#include <type_traits>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/simd256.h"
#include "kernels/cpu/unpack.h"

namespace tessera::ops {
namespace {

template <GgmlType T, int NT>
void gemv_nl(const MatmulArgs& args, int64_t t0) {
  static_assert(T == GgmlType::IQ4_NL || T == GgmlType::Q4_0);
  constexpr int kBlock = 18;
  constexpr int zshift = T == GgmlType::Q4_0 ? 3 : 7;
  const WeightView& w = *args.w;
  const PreparedActs& x = *args.x;
  const int64_t nb = w.n_in / 32, n = w.n_in;
  alignas(64) int8_t tb[64];
  alignas(64) uint8_t gidx[64];
  for (int i = 0; i < 64; ++i) {
    tb[i] = static_cast<int8_t>(T == GgmlType::IQ4_NL ? kIQ4NLValues[i % 16] + 128 : i % 16);
    gidx[i] = static_cast<uint8_t>(2 + kBlock * (i / 16) + i % 16);  // quant byte i%16 of block i/16
  }
  const __m512i table = _mm512_load_si512(tb), gather_qs = _mm512_load_si512(gidx), m4 = _mm512_set1_epi8(15);
  // after the reduction block k sits in dword 4k (blocks 0-3) and 4k+1 (blocks 4-7)
  const __m512i to_blocks = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0);
  // bytes of the 4 block scales within a 72-byte group (f16 at 0, 18, 36, 54)
  const __m512i gather_d = _mm512_castsi128_si512(_mm_setr_epi8(0, 1, 18, 19, 36, 37, 54, 55, 0, 0, 0, 0, 0, 0, 0, 0));
  for (int64_t r = args.row_begin; r < args.row_end; ++r) {
    const uint8_t* row = w.data + static_cast<size_t>(r) * w.row_bytes;
    __m256 acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 8 <= nb; b += 8) {
      const uint8_t* g = row + b * kBlock;
      __m512i ulo[2], uhi[2], dh[2];
      for (int h = 0; h < 2; ++h) {  // blocks 4h..4h+3: 72 bytes
        const uint8_t* p = g + 4 * kBlock * h;
        const __m512i z0 = _mm512_loadu_si512(p);
        const __m512i q = _mm512_permutex2var_epi8(z0, gather_qs, _mm512_maskz_loadu_epi8(0xff, p + 64));
        dh[h] = _mm512_permutexvar_epi8(gather_d, z0);  // the 4 f16 scales in the low 8 bytes
        ulo[h] = _mm512_and_si512(q, m4);
        uhi[h] = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
        if constexpr (T == GgmlType::IQ4_NL) {
          ulo[h] = _mm512_shuffle_epi8(table, ulo[h]);
          uhi[h] = _mm512_shuffle_epi8(table, uhi[h]);
        }
      }
      const __m256 wscale = _mm256_cvtph_ps(_mm_unpacklo_epi64(_mm512_castsi512_si128(dh[0]), _mm512_castsi512_si128(dh[1])));
      for (int t = 0; t < NT; ++t) {
        const int8_t* xq = x.qs + (t0 + t) * n + 32 * b;
        __m512i dp[2];
        for (int h = 0; h < 2; ++h) {
          const __m512i x0 = _mm512_loadu_si512(xq + 128 * h), x1 = _mm512_loadu_si512(xq + 128 * h + 64);
          // values 0..15 of the 4 blocks, then 16..31, to match the nibble halves
          const __m512i xlo = _mm512_shuffle_i64x2(x0, x1, _MM_SHUFFLE(2, 0, 2, 0));
          const __m512i xhi = _mm512_shuffle_i64x2(x0, x1, _MM_SHUFFLE(3, 1, 3, 1));
          dp[h] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), ulo[h], xlo), uhi[h], xhi);
        }
        const __m512i a = _mm512_add_epi32(_mm512_unpacklo_epi32(dp[0], dp[1]), _mm512_unpackhi_epi32(dp[0], dp[1]));
        const __m512i s = _mm512_add_epi32(a, _mm512_shuffle_epi32(a, _MM_PERM_BADC));
        __m256i sums = _mm512_castsi512_si256(_mm512_permutexvar_epi32(to_blocks, s));
        const int64_t xb = (t0 + t) * (n / 32) + b;
        sums = _mm256_sub_epi32(sums, _mm256_slli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.s32 + xb)), zshift));
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_mul_ps(wscale, _mm256_loadu_ps(x.d + xb)), acc[t]);
      }
    }
    float tail[NT] = {};
    for (; b < nb; ++b) {  // a last few blocks, one at a time
      const uint8_t* blk = row + b * kBlock;
      alignas(32) uint8_t u[32];
      float a, c;
      unpack_row(T, blk, 32, u, &a, &c);
      for (int t = 0; t < NT; ++t) {
        const int64_t xb = (t0 + t) * (n / 32) + b;
        int32_t isum = 0;
        for (int j = 0; j < 32; ++j) isum += static_cast<int32_t>(u[j]) * x.qs[32 * xb + j];
        tail[t] += x.d[xb] * (a * static_cast<float>(isum) - c * static_cast<float>(x.s32[xb]));
      }
    }
    for (int t = 0; t < NT; ++t) args.y[(t0 + t) * args.y_stride + r] = hsum256(acc[t]) + tail[t];
  }
}

template <GgmlType T>
void run_groups(const MatmulArgs& a) {
  int64_t t0 = 0;
  for (; t0 + 4 <= a.x->n_tokens; t0 += 4) gemv_nl<T, 4>(a, t0);
  switch (a.x->n_tokens - t0) {
    case 3: gemv_nl<T, 3>(a, t0); break;
    case 2: gemv_nl<T, 2>(a, t0); break;
    case 1: gemv_nl<T, 1>(a, t0); break;
    default: break;
  }
}

}  // namespace

void gemv_iq4_nl_avx512vbmi(const MatmulArgs& a) { run_groups<GgmlType::IQ4_NL>(a); }
void gemv_q4_0_avx512vbmi(const MatmulArgs& a) { run_groups<GgmlType::Q4_0>(a); }

}  // namespace tessera::ops
