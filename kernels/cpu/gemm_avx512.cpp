// AVX-512 (VNNI) GEMM for every quantized type: 16 weight rows are unpacked once into a tile of u8 codes
// with one 32-bit lane per row, then each group of up to 8 tokens runs vpdpbusd with the token's 4
// activation bytes broadcast: 16 rows x 4 values per instruction, each unpacked weight reused by all
// tokens. Per sub-block the int32 sums are scaled into f32 accumulators:
//   y += a * (dx * sum(u * q)) - c * (dx * sum(q)).
// Also the F32 / F16 / BF16 kernels (f32 FMA on converted values).
#include <immintrin.h>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/gemm_driver.h"
#include "kernels/cpu/simd256.h"
#include "kernels/cpu/gemm_dequant.h"
#include "kernels/cpu/unpack.h"

namespace tessera::ops {
namespace {

constexpr int R = 16;    // rows per tile = int32 lanes of a zmm
constexpr int TMAX = 8;  // tokens per register block

inline int32_t load_i32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// acc[t] (16 rows) for T tokens over all sub-blocks of the tile.
template <int T, int SUB>
void tile_block(const uint8_t* q, const float* ta, const float* tc, int64_t n_sub, const int8_t* const* xq,
                const float* dx, const float* dxs, float* y, int64_t y_stride, __mmask16 store_mask) {
  __m512 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t s = 0; s < n_sub; ++s) {
    __m512i ai[T];
    for (int t = 0; t < T; ++t) ai[t] = _mm512_setzero_si512();
    const uint8_t* qs = q + s * SUB * R;
    for (int kk = 0; kk < SUB / 4; ++kk) {
      const __m512i w = _mm512_load_si512(qs + kk * 64);
      for (int t = 0; t < T; ++t)
        ai[t] = _mm512_dpbusd_epi32(ai[t], w, _mm512_set1_epi32(load_i32(xq[t] + s * SUB + kk * 4)));
    }
    const __m512 va = _mm512_load_ps(ta + s * R);
    const __m512 vc = _mm512_load_ps(tc + s * R);
    for (int t = 0; t < T; ++t) {
      const __m512 scale = _mm512_mul_ps(va, _mm512_set1_ps(dx[t * n_sub + s]));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ai[t]), scale, acc[t]);
      acc[t] = _mm512_fnmadd_ps(vc, _mm512_set1_ps(dxs[t * n_sub + s]), acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(y + t * y_stride, store_mask, acc[t]);
}

// ---- SIMD row unpack (hot types) and the 16-row dword transpose into the tile ----

// 32-value blocks with an f16 scale first (Q4_0, Q5_0, Q8_0, IQ4_NL): codes per block, the scales of
// 8 blocks at a time with one gather.
template <GgmlType T>
void unpack_b32(const uint8_t* row, int64_t n, uint8_t* u, float* a, float* c) {
  alignas(32) int8_t tb[32];
  for (int i = 0; i < 32; ++i) tb[i] = static_cast<int8_t>(kIQ4NLValues[i % 16] + 128);
  const __m256i table = _mm256_load_si256(reinterpret_cast<const __m256i*>(tb));
  constexpr size_t bs = T == GgmlType::Q8_0 ? sizeof(block_q8_0) : T == GgmlType::Q5_0 ? sizeof(block_q5_0) : sizeof(block_q4_0);
  constexpr float z = T == GgmlType::Q4_0 ? 8.0f : T == GgmlType::Q5_0 ? 16.0f : 128.0f;
  const __m256i offs = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(static_cast<int>(bs)));
  const int64_t nb = n / 32;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = row + b * bs;
    __m256i v;
    if constexpr (T == GgmlType::IQ4_NL) {
      v = _mm256_shuffle_epi8(table, nibbles32(blk + 2));
    } else if constexpr (T == GgmlType::Q8_0) {
      v = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2)), _mm256_set1_epi8(static_cast<char>(0x80)));
    } else if constexpr (T == GgmlType::Q4_0) {
      v = nibbles32(blk + 2);
    } else {
      uint32_t qh;
      std::memcpy(&qh, blk + 2, 4);
      v = nibbles32(blk + 6);
      v = _mm256_mask_add_epi8(v, static_cast<__mmask32>(qh), v, _mm256_set1_epi8(16));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(u + 32 * b), v);
  }
  int64_t b = 0;
  for (; b + 8 <= nb; b += 8) {
    const __m256i raw = _mm256_i32gather_epi32(reinterpret_cast<const int*>(row + b * bs), offs, 1);
    const __m256 d = _mm256_cvtph_ps(_mm256_cvtepi32_epi16(raw));
    _mm256_storeu_ps(a + b, d);
    _mm256_storeu_ps(c + b, _mm256_mul_ps(_mm256_set1_ps(z), d));
  }
  for (; b < nb; ++b) {
    const float d = _cvtsh_ss(*reinterpret_cast<const uint16_t*>(row + b * bs));
    a[b] = d;
    c[b] = z * d;
  }
}

// Codes, a and c of one row like unpack_row, with SIMD for the types of real files; false = not handled.
inline bool unpack_row_simd(GgmlType t, const uint8_t* row, int64_t n, uint8_t* u, float* a, float* c) {
  switch (t) {
    case GgmlType::IQ4_NL: unpack_b32<GgmlType::IQ4_NL>(row, n, u, a, c); return true;
    case GgmlType::Q8_0: unpack_b32<GgmlType::Q8_0>(row, n, u, a, c); return true;
    case GgmlType::Q5_0: unpack_b32<GgmlType::Q5_0>(row, n, u, a, c); return true;
    case GgmlType::Q4_0: unpack_b32<GgmlType::Q4_0>(row, n, u, a, c); return true;
    case GgmlType::Q4_K: case GgmlType::Q5_K: {
      const bool five = t == GgmlType::Q5_K;
      const size_t bs = five ? sizeof(block_q5_K) : sizeof(block_q4_K);
      const __m256i m4 = _mm256_set1_epi8(15);
      for (int64_t i = 0; i < n / 256; ++i, row += bs, u += 256, a += 8, c += 8) {
        const float d = _cvtsh_ss(reinterpret_cast<const uint16_t*>(row)[0]);
        const float dmin = _cvtsh_ss(reinterpret_cast<const uint16_t*>(row)[1]);
        // the 6-bit scales and mins of the 8 sub-blocks, 4 at a time in 32-bit words
        uint32_t sw[3];
        std::memcpy(sw, row + 4, 12);
        const uint64_t sc = static_cast<uint64_t>(sw[0] & 0x3f3f3f3f) |
                            static_cast<uint64_t>((sw[2] & 0x0f0f0f0f) | ((sw[0] >> 6) & 0x03030303) << 4) << 32;
        const uint64_t mn = static_cast<uint64_t>(sw[1] & 0x3f3f3f3f) |
                            static_cast<uint64_t>(((sw[2] >> 4) & 0x0f0f0f0f) | ((sw[1] >> 6) & 0x03030303) << 4) << 32;
        _mm256_storeu_ps(a, _mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(sc))))));
        _mm256_storeu_ps(c, _mm256_mul_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(mn))))));
        const uint8_t* qs = row + (five ? 48 : 16);
        const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 16));
        for (int ch = 0; ch < 4; ++ch) {
          const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * ch));
          __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
          if (five) {
            const __mmask32 blo = _mm256_test_epi8_mask(qh, _mm256_set1_epi8(static_cast<char>(1 << (2 * ch))));
            const __mmask32 bhi = _mm256_test_epi8_mask(qh, _mm256_set1_epi8(static_cast<char>(2 << (2 * ch))));
            lo = _mm256_mask_add_epi8(lo, blo, lo, _mm256_set1_epi8(16));
            hi = _mm256_mask_add_epi8(hi, bhi, hi, _mm256_set1_epi8(16));
          }
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(u + 64 * ch), lo);
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(u + 64 * ch + 32), hi);
        }
      }
      return true;
    }
    case GgmlType::Q6_K: {
      const auto* b = reinterpret_cast<const block_q6_K*>(row);
      const __m512i m4 = _mm512_set1_epi8(15), m30 = _mm512_set1_epi8(0x30);
      const __m512i cnt_a = _mm512_setr_epi32(4, 4, 4, 4, 4, 4, 4, 4, 2, 2, 2, 2, 2, 2, 2, 2);
      const __m512i cnt_b = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2);
      for (int64_t i = 0; i < n / 256; ++i, ++b, u += 256, a += 16, c += 16) {
        const __m512 av = _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(b->d)),
                                        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b->scales)))));
        _mm512_storeu_ps(a, av);
        _mm512_storeu_ps(c, _mm512_mul_ps(_mm512_set1_ps(32.0f), av));
        for (int h = 0; h < 2; ++h) {
          const __m512i l = _mm512_loadu_si512(b->ql + 64 * h);
          const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qh + 32 * h)));
          const __m512i va = _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_and_si512(_mm512_sllv_epi32(qh, cnt_a), m30));
          const __m512i vb = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                             _mm512_and_si512(_mm512_srlv_epi32(qh, cnt_b), m30));
          _mm512_storeu_si512(u + 128 * h, va);
          _mm512_storeu_si512(u + 128 * h + 64, vb);
        }
      }
      return true;
    }
    default: return false;
  }
}

// 16 rows x 16 dwords -> 16 registers of one dword index across the rows.
inline void transpose16x16(__m512i r[16]) {
  __m512i t[16], v[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // rows 4i..4i+3: v[4i + m] = element m of each 128-bit lane
    v[4 * i + 0] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    v[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    v[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    v[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int m = 0; m < 4; ++m) {
    const __m512i p = _mm512_shuffle_i32x4(v[m], v[4 + m], _MM_SHUFFLE(2, 0, 2, 0));
    const __m512i q = _mm512_shuffle_i32x4(v[m], v[4 + m], _MM_SHUFFLE(3, 1, 3, 1));
    const __m512i p2 = _mm512_shuffle_i32x4(v[8 + m], v[12 + m], _MM_SHUFFLE(2, 0, 2, 0));
    const __m512i q2 = _mm512_shuffle_i32x4(v[8 + m], v[12 + m], _MM_SHUFFLE(3, 1, 3, 1));
    r[m] = _mm512_shuffle_i32x4(p, p2, _MM_SHUFFLE(2, 0, 2, 0));       // dword m of lane 0
    r[8 + m] = _mm512_shuffle_i32x4(p, p2, _MM_SHUFFLE(3, 1, 3, 1));   // lane 2
    r[4 + m] = _mm512_shuffle_i32x4(q, q2, _MM_SHUFFLE(2, 0, 2, 0));   // lane 1
    r[12 + m] = _mm512_shuffle_i32x4(q, q2, _MM_SHUFFLE(3, 1, 3, 1));  // lane 3
  }
}

// The 16-row tile (see unpack_tile in unpack.h): rows decoded into rows [16][n] (SIMD where it exists),
// then transposed 64 bytes at a time.
void unpack_tile16(GgmlType t, const uint8_t* w, size_t row_bytes, int64_t r0, int nrows, int64_t n, uint8_t* q,
                   float* a, float* c, uint8_t* rows, float* ra, float* rc) {
  const int64_t n_sub = n / unpack_sub(t);
  const int64_t stride = n + 64;  // not a multiple of 4 KiB: the 16 row loads of a column block hit different L1 sets
  for (int i = 0; i < R; ++i) {
    uint8_t* u = rows + i * stride;
    float* ai = ra + i * n_sub;
    float* ci = rc + i * n_sub;
    if (i < nrows) {
      const uint8_t* src = w + static_cast<size_t>(r0 + i) * row_bytes;
      if (i + 2 < nrows)  // two rows ahead into L1: the decode below waits on these loads otherwise
        for (size_t off = 0; off < row_bytes; off += 64) _mm_prefetch(reinterpret_cast<const char*>(src + 2 * row_bytes + off), _MM_HINT_T0);
      if (!unpack_row_simd(t, src, n, u, ai, ci)) unpack_row(t, src, n, u, ai, ci);
    } else {
      std::memset(u, 0, static_cast<size_t>(n));
      for (int64_t s = 0; s < n_sub; ++s) ai[s] = ci[s] = 0.0f;
    }
  }
  for (int64_t cb = 0; cb < n / 64; ++cb) {
    __m512i r[16];
    for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_si512(rows + i * stride + 64 * cb);
    transpose16x16(r);
    for (int k = 0; k < 16; ++k) _mm512_store_si512(q + (16 * cb + k) * 64, r[k]);
  }
  if (n % 64) {  // a last 32 values
    uint32_t* q32 = reinterpret_cast<uint32_t*>(q);
    for (int i = 0; i < R; ++i)
#pragma clang loop vectorize(disable)
      for (int64_t k = (n / 64) * 16; k < n / 4; ++k) std::memcpy(&q32[k * R + i], rows + i * stride + 4 * k, 4);
  }
  // the per-sub-block terms: [16][n_sub] -> [n_sub][16], 16 sub-blocks at a time (a scalar loop here
  // would be vectorized into scatters, which are slow)
  int64_t s0 = 0;
  for (; s0 + 16 <= n_sub; s0 += 16) {
    for (int which = 0; which < 2; ++which) {
      const float* src = which ? rc : ra;
      float* dst = which ? c : a;
      __m512i r[16];
      for (int i = 0; i < 16; ++i) r[i] = _mm512_castps_si512(_mm512_loadu_ps(src + i * n_sub + s0));
      transpose16x16(r);
      for (int k = 0; k < 16; ++k) _mm512_store_si512(dst + (s0 + k) * R, r[k]);
    }
  }
  for (int64_t s = s0; s < n_sub; ++s) {
    alignas(64) float ta[R], tc[R];
#pragma clang loop vectorize(disable)
    for (int i = 0; i < R; ++i) {
      ta[i] = ra[i * n_sub + s];
      tc[i] = rc[i * n_sub + s];
    }
    _mm512_store_ps(a + s * R, _mm512_load_ps(ta));
    _mm512_store_ps(c + s * R, _mm512_load_ps(tc));
  }
}

template <int SUB>
void gemm_q8_tiles(const MatmulArgs& args) {
  const WeightView& w = *args.w;
  const PreparedActs& x = *args.x;
  const int64_t n = w.n_in, n_sub = n / SUB, n_tok = x.n_tokens;
  const auto [q, ta, tc, rows, ra, rc, dx, dxs] = tile_scratch<R, SUB>(x, n);
  for (int64_t r = args.row_begin; r < args.row_begin + 2 && r < args.row_end; ++r)  // the first two rows
    for (size_t off = 0; off < w.row_bytes; off += 64)
      _mm_prefetch(reinterpret_cast<const char*>(w.data + static_cast<size_t>(r) * w.row_bytes + off), _MM_HINT_T0);
  for (int64_t r0 = args.row_begin; r0 < args.row_end; r0 += R) {
    const int nrows = static_cast<int>(args.row_end - r0 < R ? args.row_end - r0 : R);
    unpack_tile16(w.type, w.data, w.row_bytes, r0, nrows, n, q, ta, tc, rows, ra, rc);
    // start fetching the next tile's weights while this one computes
    if (r0 + R < args.row_end) {
      const uint8_t* next = w.data + static_cast<size_t>(r0 + R) * w.row_bytes;
      const size_t next_bytes = static_cast<size_t>(args.row_end - r0 - R < R ? args.row_end - r0 - R : R) * w.row_bytes;
      for (size_t off = 0; off < next_bytes; off += 64) _mm_prefetch(reinterpret_cast<const char*>(next + off), _MM_HINT_T1);
    }
    const __mmask16 mask = static_cast<__mmask16>((1u << nrows) - 1);
    for (int64_t t0 = 0; t0 < n_tok; t0 += TMAX) {
      const int nt = static_cast<int>(n_tok - t0 < TMAX ? n_tok - t0 : TMAX);
      const int8_t* xq[TMAX];
      for (int t = 0; t < nt; ++t) xq[t] = x.qs + (t0 + t) * n;
      const float* d0 = dx + t0 * n_sub;
      const float* s0 = dxs + t0 * n_sub;
      float* y = args.y + t0 * args.y_stride + r0;
      switch (nt) {
        case 1: tile_block<1, SUB>(q, ta, tc, n_sub, xq, d0, s0, y, args.y_stride, mask); break;
        case 2: tile_block<2, SUB>(q, ta, tc, n_sub, xq, d0, s0, y, args.y_stride, mask); break;
        case 3: tile_block<3, SUB>(q, ta, tc, n_sub, xq, d0, s0, y, args.y_stride, mask); break;
        case 4: tile_block<4, SUB>(q, ta, tc, n_sub, xq, d0, s0, y, args.y_stride, mask); break;
        case 5: tile_block<5, SUB>(q, ta, tc, n_sub, xq, d0, s0, y, args.y_stride, mask); break;
        case 6: tile_block<6, SUB>(q, ta, tc, n_sub, xq, d0, s0, y, args.y_stride, mask); break;
        case 7: tile_block<7, SUB>(q, ta, tc, n_sub, xq, d0, s0, y, args.y_stride, mask); break;
        default: tile_block<8, SUB>(q, ta, tc, n_sub, xq, d0, s0, y, args.y_stride, mask); break;
      }
    }
  }
}

// ---- float weights ----

// 16 values (masked) of a row of weights or activations as f32.
template <GgmlType W>
inline __m512 load16(const void* p, int64_t i, __mmask16 m) {
  if constexpr (W == GgmlType::F32) {
    return _mm512_maskz_loadu_ps(m, static_cast<const float*>(p) + i);
  } else if constexpr (W == GgmlType::F16) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(p) + i));
  } else {
    const __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(p) + i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
  }
}

// RR rows x T tokens of y: the block kernel of gemm_float_rows.
struct FloatBlock512 {
  template <GgmlType W, int RR, int T>
  static void block(const uint8_t* const* wr, const void* const* xr, int64_t n, float* y, int64_t y_stride);
};

template <GgmlType W, int RR, int T>
void FloatBlock512::block(const uint8_t* const* wr, const void* const* xr, int64_t n, float* y, int64_t y_stride) {
  __m512 acc[RR][T];
  for (int r = 0; r < RR; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (n - i)) - 1);
    __m512 xv[T];
    for (int t = 0; t < T; ++t) xv[t] = load16<W>(xr[t], i, m);
    for (int r = 0; r < RR; ++r) {
      const __m512 wv = load16<W>(wr[r], i, m);
      for (int t = 0; t < T; ++t) acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
    }
  }
  for (int r = 0; r < RR; ++r)
    for (int t = 0; t < T; ++t) y[t * y_stride + r] = _mm512_reduce_add_ps(acc[r][t]);
}

}  // namespace

void gemm_q8_tiles_avx512(const MatmulArgs& a) {
  if (unpack_sub(a.w->type) == 16) gemm_q8_tiles<16>(a);
  else gemm_q8_tiles<32>(a);
}

void gemm_float_avx512(const MatmulArgs& a) {
  gemm_float_by_type<4, FloatBlock512>(a);
}

void gemm_dequant_f32_avx512(const MatmulArgs& a) { gemm_dequant_f32<gemm_float_avx512>(a); }

}  // namespace tessera::ops
