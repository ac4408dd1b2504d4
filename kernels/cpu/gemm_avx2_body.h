// The 256-bit int8 tile GEMM shared by gemm_avx2.cpp (maddubs, no VNNI) and gemm_avxvnni.cpp
// (vpdpbusd, AVX-VNNI): 8 weight rows per tile (one 32-bit lane each), up to 4 tokens per register block.
// Included once per ISA translation unit; internal linkage only.
#pragma once
#include <immintrin.h>

#include "kernels/cpu/gemm_driver.h"
#include "kernels/cpu/simd256.h"
#include "kernels/cpu/unpack.h"

namespace tessera::ops {
namespace {

constexpr int R8 = 8;
constexpr int T4 = 4;

inline int32_t load_i32_avx2(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// ---- SIMD row unpack (types of real files) and the 8-row dword transpose into the tile ----

// Codes, a and c of one row like unpack_row; false = type not handled here.
inline bool unpack_row_simd256(GgmlType t, const uint8_t* row, int64_t n, uint8_t* u, float* a, float* c) {
  switch (t) {
    case GgmlType::IQ4_NL: case GgmlType::Q8_0: case GgmlType::Q4_0: case GgmlType::Q5_0: {
      alignas(32) int8_t tb[32];
      for (int i = 0; i < 32; ++i) tb[i] = static_cast<int8_t>(kIQ4NLValues[i % 16] + 128);
      const __m256i table = _mm256_load_si256(reinterpret_cast<const __m256i*>(tb));
      const size_t bs = type_traits(t).type_size;
      const float z = t == GgmlType::Q4_0 ? 8.0f : t == GgmlType::Q5_0 ? 16.0f : 128.0f;
      for (int64_t b = 0; b < n / 32; ++b, row += bs) {
        __m256i v;
        if (t == GgmlType::IQ4_NL) {
          v = _mm256_shuffle_epi8(table, nibbles32(row + 2));
        } else if (t == GgmlType::Q8_0) {
          v = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2)), _mm256_set1_epi8(static_cast<char>(0x80)));
        } else if (t == GgmlType::Q4_0) {
          v = nibbles32(row + 2);
        } else {
          uint32_t qh;
          std::memcpy(&qh, row + 2, 4);
          // bit j of qh -> byte j: spread the 4 qh bytes, test one bit per byte
          const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(qh)),
                                                     _mm256_setr_epi64x(0, 0x0101010101010101LL, 0x0202020202020202LL, 0x0303030303030303LL));
          const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ULL));
          const __m256i hb = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
          v = _mm256_or_si256(nibbles32(row + 6), _mm256_and_si256(hb, _mm256_set1_epi8(16)));
        }
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(u + 32 * b), v);
        const float d = _cvtsh_ss(*reinterpret_cast<const uint16_t*>(row));
        a[b] = d;
        c[b] = z * d;
      }
      return true;
    }
    case GgmlType::Q4_K: case GgmlType::Q5_K: {
      const bool five = t == GgmlType::Q5_K;
      const size_t bs = five ? sizeof(block_q5_K) : sizeof(block_q4_K);
      const __m256i m4 = _mm256_set1_epi8(15), one = _mm256_set1_epi8(1);
      for (int64_t i = 0; i < n / 256; ++i, row += bs, u += 256, a += 8, c += 8) {
        uint32_t sw[3];
        std::memcpy(sw, row + 4, 12);
        const uint64_t sc = static_cast<uint64_t>(sw[0] & 0x3f3f3f3f) |
                            static_cast<uint64_t>((sw[2] & 0x0f0f0f0f) | ((sw[0] >> 6) & 0x03030303) << 4) << 32;
        const uint64_t mn = static_cast<uint64_t>(sw[1] & 0x3f3f3f3f) |
                            static_cast<uint64_t>(((sw[2] >> 4) & 0x0f0f0f0f) | ((sw[1] >> 6) & 0x03030303) << 4) << 32;
        const float d = _cvtsh_ss(reinterpret_cast<const uint16_t*>(row)[0]);
        const float dmin = _cvtsh_ss(reinterpret_cast<const uint16_t*>(row)[1]);
        _mm256_storeu_ps(a, _mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(sc))))));
        _mm256_storeu_ps(c, _mm256_mul_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(mn))))));
        const uint8_t* qs = row + (five ? 48 : 16);
        const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 16));
        for (int ch = 0; ch < 4; ++ch) {
          const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * ch));
          __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
          if (five) {
            lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * ch)), one), 4));
            hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * ch + 1)), one), 4));
          }
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(u + 64 * ch), lo);
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(u + 64 * ch + 32), hi);
        }
      }
      return true;
    }
    case GgmlType::Q6_K: {
      const auto* b = reinterpret_cast<const block_q6_K*>(row);
      const __m256i m4 = _mm256_set1_epi8(15), m3 = _mm256_set1_epi8(3);
      for (int64_t i = 0; i < n / 256; ++i, ++b, u += 256, a += 16, c += 16) {
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(b->d));
        for (int hh = 0; hh < 2; ++hh) {
          const __m256 av = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b->scales + 8 * hh)))));
          _mm256_storeu_ps(a + 8 * hh, av);
          _mm256_storeu_ps(c + 8 * hh, _mm256_mul_ps(_mm256_set1_ps(32.0f), av));
        }
        for (int h = 0; h < 2; ++h) {
          const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->ql + 64 * h));
          const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->ql + 64 * h + 32));
          const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qh + 32 * h));
          uint8_t* o = u + 128 * h;
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4)));
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 32), _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m3), 4)));
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 64), _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m3), 4)));
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 96), _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m3), 4)));
        }
      }
      return true;
    }
    default: return false;
  }
}

// 8 rows x 8 dwords -> 8 registers of one dword index across the rows.
inline void transpose8x8(__m256i r[8]) {
  __m256i t[8], v[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {  // rows 4i..4i+3: v[4i + m] = element m of each 128-bit lane
    v[4 * i + 0] = _mm256_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    v[4 * i + 1] = _mm256_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    v[4 * i + 2] = _mm256_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    v[4 * i + 3] = _mm256_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int m = 0; m < 4; ++m) {
    r[m] = _mm256_permute2x128_si256(v[m], v[4 + m], 0x20);      // dword m of lane 0
    r[4 + m] = _mm256_permute2x128_si256(v[m], v[4 + m], 0x31);  // dword m of lane 1
  }
}

// The 8-row tile (layout as unpack_tile in unpack.h): rows decoded (SIMD where it exists), transposed.
void unpack_tile8(GgmlType t, const uint8_t* w, size_t row_bytes, int64_t r0, int nrows, int64_t n, uint8_t* q,
                  float* a, float* c, uint8_t* rows, float* ra, float* rc) {
  const int64_t n_sub = n / unpack_sub(t);
  const int64_t stride = n + 64;  // not a multiple of 4 KiB
  for (int i = 0; i < R8; ++i) {
    uint8_t* u = rows + i * stride;
    float* ai = ra + i * n_sub;
    float* ci = rc + i * n_sub;
    if (i < nrows) {
      const uint8_t* src = w + static_cast<size_t>(r0 + i) * row_bytes;
      if (!unpack_row_simd256(t, src, n, u, ai, ci)) unpack_row(t, src, n, u, ai, ci);
    } else {
      std::memset(u, 0, static_cast<size_t>(n));
      for (int64_t s = 0; s < n_sub; ++s) ai[s] = ci[s] = 0.0f;
    }
  }
  for (int64_t cb = 0; cb < n / 32; ++cb) {
    __m256i r[8];
    for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows + i * stride + 32 * cb));
    transpose8x8(r);
    for (int k = 0; k < 8; ++k) _mm256_store_si256(reinterpret_cast<__m256i*>(q + (8 * cb + k) * 32), r[k]);
  }
  int64_t s0 = 0;
  for (; s0 + 8 <= n_sub; s0 += 8) {
    for (int which = 0; which < 2; ++which) {
      const float* src = which ? rc : ra;
      float* dst = which ? c : a;
      __m256i r[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_castps_si256(_mm256_loadu_ps(src + i * n_sub + s0));
      transpose8x8(r);
      for (int k = 0; k < 8; ++k) _mm256_store_si256(reinterpret_cast<__m256i*>(dst + (s0 + k) * R8), r[k]);
    }
  }
  for (int64_t s = s0; s < n_sub; ++s)
#pragma clang loop vectorize(disable)
    for (int i = 0; i < R8; ++i) {
      a[s * R8 + i] = ra[i * n_sub + s];
      c[s * R8 + i] = rc[i * n_sub + s];
    }
}

// Largest unsigned code a type's unpacked form holds (unpack.h): the small-code types run maddubs on
// the codes directly; the others hold u = v + 128 and need the signed form.
constexpr int max_code(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_0: case GgmlType::Q4_1: case GgmlType::Q4_K: return 15;
    case GgmlType::Q5_0: case GgmlType::Q5_1: case GgmlType::Q5_K: return 31;
    case GgmlType::Q6_K: return 63;
    default: return 255;
  }
}

// Without VNNI, G consecutive 4-value steps of codes <= 127 are summed as int16 maddubs partials before
// one vpmaddwd: |sum| <= G * 2 * max_code * 127 must stay below 2^15 (G = 8 / 4 / 2 for codes <= 15 / 31 / 63).
constexpr int int16_group(int code) { return code <= 15 ? 8 : code <= 31 ? 4 : code <= 63 ? 2 : 0; }

// T tokens x 8 rows of one tile. G > 0: small unsigned codes (maddubs on them directly, G steps summed
// in int16); G == 0: codes u = v + 128 (signed form |w| x sign(x, w)). With VNNI, vpdpbusd for both.
template <int T, int SUB, int G>
void tile_block_avx2(const uint8_t* q, const float* ta, const float* tc, int64_t n_sub, const int8_t* const* xq,
                     const float* dx, const float* dxs, float* y, int64_t y_stride, int nrows) {
  __m256 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
#if !defined(__AVXVNNI__)
  const __m256i ones16 = _mm256_set1_epi16(1);
  const __m256i bias = _mm256_set1_epi8(static_cast<char>(0x80));
  static_assert(G == 0 || (SUB / 4) % G == 0, "the int16 groups tile a sub-block");
#endif
  for (int64_t s = 0; s < n_sub; ++s) {
    __m256i ai[T];
    for (int t = 0; t < T; ++t) ai[t] = _mm256_setzero_si256();
    const uint8_t* qs = q + s * SUB * R8;
#if defined(__AVXVNNI__)
    for (int kk = 0; kk < SUB / 4; ++kk) {
      const __m256i w = _mm256_load_si256(reinterpret_cast<const __m256i*>(qs + kk * 32));
      for (int t = 0; t < T; ++t)
        ai[t] = _mm256_dpbusd_avx_epi32(ai[t], w, _mm256_set1_epi32(load_i32_avx2(xq[t] + s * SUB + kk * 4)));
    }
#else
    if constexpr (G > 0) {
      for (int k0 = 0; k0 < SUB / 4; k0 += G) {
        __m256i a16[T];
        for (int t = 0; t < T; ++t) a16[t] = _mm256_setzero_si256();
        for (int kk = k0; kk < k0 + G; ++kk) {
          const __m256i w = _mm256_load_si256(reinterpret_cast<const __m256i*>(qs + kk * 32));
          for (int t = 0; t < T; ++t)
            a16[t] = _mm256_add_epi16(a16[t], _mm256_maddubs_epi16(w, _mm256_set1_epi32(load_i32_avx2(xq[t] + s * SUB + kk * 4))));
        }
        for (int t = 0; t < T; ++t) ai[t] = _mm256_add_epi32(ai[t], _mm256_madd_epi16(a16[t], ones16));
      }
    } else {
      for (int kk = 0; kk < SUB / 4; ++kk) {
        // signed weights u - 128 through maddubs(|w|, x * sign(w)): no saturation as |w| <= 128, |x| <= 127
        const __m256i w = _mm256_load_si256(reinterpret_cast<const __m256i*>(qs + kk * 32));
        const __m256i ws = _mm256_xor_si256(w, bias);
        const __m256i wabs = _mm256_abs_epi8(ws);
        for (int t = 0; t < T; ++t) {
          const __m256i xs = _mm256_sign_epi8(_mm256_set1_epi32(load_i32_avx2(xq[t] + s * SUB + kk * 4)), ws);
          ai[t] = _mm256_add_epi32(ai[t], _mm256_madd_epi16(_mm256_maddubs_epi16(wabs, xs), ones16));
        }
      }
    }
#endif
    const __m256 va = _mm256_load_ps(ta + s * R8);
#if defined(__AVXVNNI__)
    const __m256 vc = _mm256_load_ps(tc + s * R8);
#else
    // signed form: the sums are of (u - 128) * q, so 128 * a * sum(q) moves into the c term
    const __m256 vc = G > 0 ? _mm256_load_ps(tc + s * R8)
                            : _mm256_fnmadd_ps(_mm256_set1_ps(128.0f), va, _mm256_load_ps(tc + s * R8));
#endif
    for (int t = 0; t < T; ++t) {
      const __m256 scale = _mm256_mul_ps(va, _mm256_set1_ps(dx[t * n_sub + s]));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ai[t]), scale, acc[t]);
      acc[t] = _mm256_fnmadd_ps(vc, _mm256_set1_ps(dxs[t * n_sub + s]), acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) {
    if (nrows == R8) {
      _mm256_storeu_ps(y + t * y_stride, acc[t]);
    } else {
      alignas(32) float tmp[R8];
      _mm256_store_ps(tmp, acc[t]);
      for (int r = 0; r < nrows; ++r) y[t * y_stride + r] = tmp[r];
    }
  }
}

template <int SUB, int G>
void gemm_q8_tiles_256(const MatmulArgs& args) {
  const WeightView& w = *args.w;
  const PreparedActs& x = *args.x;
  const int64_t n = w.n_in, n_sub = n / SUB, n_tok = x.n_tokens;
  const auto [q, ta, tc, rows, ra, rc, dx, dxs] = tile_scratch<R8, SUB>(x, n);
  for (int64_t r0 = args.row_begin; r0 < args.row_end; r0 += R8) {
    const int nrows = static_cast<int>(args.row_end - r0 < R8 ? args.row_end - r0 : R8);
    unpack_tile8(w.type, w.data, w.row_bytes, r0, nrows, n, q, ta, tc, rows, ra, rc);
    for (int64_t t0 = 0; t0 < n_tok; t0 += T4) {
      const int nt = static_cast<int>(n_tok - t0 < T4 ? n_tok - t0 : T4);
      const int8_t* xq[T4];
      for (int t = 0; t < nt; ++t) xq[t] = x.qs + (t0 + t) * n;
      const float* d0 = dx + t0 * n_sub;
      const float* s0 = dxs + t0 * n_sub;
      float* y = args.y + t0 * args.y_stride + r0;
      switch (nt) {
        case 1: tile_block_avx2<1, SUB, G>(q, ta, tc, n_sub, xq, d0, s0, y, args.y_stride, nrows); break;
        case 2: tile_block_avx2<2, SUB, G>(q, ta, tc, n_sub, xq, d0, s0, y, args.y_stride, nrows); break;
        case 3: tile_block_avx2<3, SUB, G>(q, ta, tc, n_sub, xq, d0, s0, y, args.y_stride, nrows); break;
        default: tile_block_avx2<4, SUB, G>(q, ta, tc, n_sub, xq, d0, s0, y, args.y_stride, nrows); break;
      }
    }
  }
}

}  // namespace
}  // namespace tessera::ops
