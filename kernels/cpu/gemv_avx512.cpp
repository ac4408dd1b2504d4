// Fused AVX-512 (VNNI) few-token kernels for the types of real Qwen3 files: each weight block is
// decoded in registers straight into u8 codes and multiplied with the Q8 activations by vpdpbusd; the
// weights stream through once, in order (decode is memory-bound).
//   K-quants: per 256-block, lane sums are scaled by the integer sub-block scales (vpmaddwd, the lane
//   sums fit 16 bits) and converted to f32 once per block; mins / the Q6_K offset use the activation sums.
//   32-blocks (Q4_0, Q5_0, Q8_0, IQ4_NL, MXFP4): codes u = value + z, sum(u*q) - z*sum(q) per block.
// Each decoded block serves up to 4 tokens (gemm with a few tokens: several sequences decoding).
#include <immintrin.h>

#include <type_traits>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/simd256.h"
#include "kernels/cpu/unpack.h"

namespace tessera::ops {
namespace {

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

// Lane-index patterns: lanes 0-7 take scale 2c, lanes 8-15 scale 2c+1 (32-value sub-blocks).
inline __m512i sub32_index(int c) {
  return _mm512_setr_epi32(2 * c, 2 * c, 2 * c, 2 * c, 2 * c, 2 * c, 2 * c, 2 * c, 2 * c + 1, 2 * c + 1, 2 * c + 1,
                           2 * c + 1, 2 * c + 1, 2 * c + 1, 2 * c + 1, 2 * c + 1);
}
// Four 16-value sub-blocks 4g..4g+3 over 16 lanes (Q6_K).
inline __m512i sub16_index(int g) {
  const int b = 4 * g;
  return _mm512_setr_epi32(b, b, b, b, b + 1, b + 1, b + 1, b + 1, b + 2, b + 2, b + 2, b + 2, b + 3, b + 3, b + 3, b + 3);
}

// ---- Q4_K / Q5_K ----
// Rows [row_begin, row_end) for NT tokens starting at t0: each block is decoded once for all of them.
template <bool FIVE, int NT>
void gemv_qk45(const MatmulArgs& args, int64_t t0) {
  const WeightView& w = *args.w;
  const PreparedActs& x = *args.x;
  const int64_t nb = w.n_in / 256, n = w.n_in;
  const size_t bsize = FIVE ? sizeof(block_q5_K) : sizeof(block_q4_K);
  const __m512i idx[4] = {sub32_index(0), sub32_index(1), sub32_index(2), sub32_index(3)};
  const __m256i m4 = _mm256_set1_epi8(15);
  for (int64_t r = args.row_begin; r < args.row_end; ++r) {
    const uint8_t* blk = w.data + static_cast<size_t>(r) * w.row_bytes;
    __m512 acc[NT];
    __m256 accm[NT];
    for (int t = 0; t < NT; ++t) {
      acc[t] = _mm512_setzero_ps();
      accm[t] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < nb; ++b, blk += bsize) {
      uint16_t dh[2];
      std::memcpy(dh, blk, 4);
      uint32_t u[3];
      std::memcpy(u, blk + 4, 12);
      const uint64_t sc = static_cast<uint64_t>(u[0] & 0x3f3f3f3f) |
                          static_cast<uint64_t>((u[2] & 0x0f0f0f0f) | ((u[0] >> 6) & 0x03030303) << 4) << 32;
      const uint64_t mn = static_cast<uint64_t>(u[1] & 0x3f3f3f3f) |
                          static_cast<uint64_t>(((u[2] >> 4) & 0x0f0f0f0f) | ((u[1] >> 6) & 0x03030303) << 4) << 32;
      const __m512i scv = _mm512_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(sc)));
      const uint8_t* qs = blk + (FIVE ? 48 : 16);
      __m256i qh;
      if constexpr (FIVE) qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16));
      __m512i isum[NT];
      for (int t = 0; t < NT; ++t) isum[t] = _mm512_setzero_si512();
      for (int c = 0; c < 4; ++c) {
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * c));
        __m256i lo = _mm256_and_si256(q, m4);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
        if constexpr (FIVE) {
          const __mmask32 blo = _mm256_test_epi8_mask(qh, _mm256_set1_epi8(static_cast<char>(1 << (2 * c))));
          const __mmask32 bhi = _mm256_test_epi8_mask(qh, _mm256_set1_epi8(static_cast<char>(2 << (2 * c))));
          lo = _mm256_mask_add_epi8(lo, blo, lo, _mm256_set1_epi8(16));
          hi = _mm256_mask_add_epi8(hi, bhi, hi, _mm256_set1_epi8(16));
        }
        const __m512i wv = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
        const __m512i scl = _mm512_permutexvar_epi32(idx[c], scv);
        for (int t = 0; t < NT; ++t) {
          const int8_t* xq = x.qs + (t0 + t) * n + b * 256;
          const __m512i dp = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv, _mm512_loadu_si512(xq + 64 * c));
          isum[t] = _mm512_add_epi32(isum[t], _mm512_madd_epi16(dp, scl));
        }
      }
      // mins: sum over sub-blocks of m * sum(q)
      const __m256i mv = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(mn)));
      const float d = h2f(dh[0]), dmin = h2f(dh[1]);
      for (int t = 0; t < NT; ++t) {
        const float dx = x.d[(t0 + t) * (n / 32) + b * 8];
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_set1_ps(d * dx), acc[t]);
        const __m256i xs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.s32 + (t0 + t) * (n / 32) + b * 8));
        accm[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_mullo_epi32(mv, xs)), _mm256_set1_ps(dmin * dx), accm[t]);
      }
    }
    for (int t = 0; t < NT; ++t) args.y[(t0 + t) * args.y_stride + r] = _mm512_reduce_add_ps(acc[t]) - hsum256(accm[t]);
  }
}

// ---- Q6_K ----
template <int NT>
void gemv_q6k(const MatmulArgs& args, int64_t t0) {
  const WeightView& w = *args.w;
  const PreparedActs& x = *args.x;
  const int64_t nb = w.n_in / 256, n = w.n_in;
  const __m512i idx[4] = {sub16_index(0), sub16_index(1), sub16_index(2), sub16_index(3)};
  const __m512i m4 = _mm512_set1_epi8(15), m30 = _mm512_set1_epi8(0x30);
  // shift counts per dword: the first 32 bytes (values l) take qh bits 0-1 (4-5 for the second
  // register), the last 32 (values l + 32) bits 2-3 (6-7); bytes crossing in are masked off by 0x30
  const __m512i cnt_a = _mm512_setr_epi32(4, 4, 4, 4, 4, 4, 4, 4, 2, 2, 2, 2, 2, 2, 2, 2);
  const __m512i cnt_b = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2);
  for (int64_t r = args.row_begin; r < args.row_end; ++r) {
    const auto* blk = reinterpret_cast<const block_q6_K*>(w.data + static_cast<size_t>(r) * w.row_bytes);
    __m512 acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; ++b, ++blk) {
      const __m512i scv = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk->scales)));
      // for vpmaddwd: the scale in the low 16 bits, zero above (the lane sums fit 16 bits)
      const __m512i sc16 = _mm512_and_si512(scv, _mm512_set1_epi32(0xffff));
      __m512i isum[NT];
      for (int t = 0; t < NT; ++t) isum[t] = _mm512_setzero_si512();
      for (int h = 0; h < 2; ++h) {
        const __m512i l = _mm512_loadu_si512(blk->ql + 64 * h);
        const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->qh + 32 * h)));
        // 16-bit shifts: per 32-bit count lanes (both halves of each dword share the count)
        const __m512i ha = _mm512_and_si512(_mm512_sllv_epi32(qh, cnt_a), m30);
        const __m512i hb = _mm512_and_si512(_mm512_srlv_epi32(qh, cnt_b), m30);
        const __m512i va = _mm512_or_si512(_mm512_and_si512(l, m4), ha);                         // values 0..63
        const __m512i vb = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4), hb);  // 64..127
        const __m512i sa = _mm512_permutexvar_epi32(idx[2 * h], sc16);
        const __m512i sb = _mm512_permutexvar_epi32(idx[2 * h + 1], sc16);
        for (int t = 0; t < NT; ++t) {
          const int8_t* xq = x.qs + (t0 + t) * n + b * 256;
          const __m512i dpa = _mm512_dpbusd_epi32(_mm512_setzero_si512(), va, _mm512_loadu_si512(xq + 128 * h));
          const __m512i dpb = _mm512_dpbusd_epi32(_mm512_setzero_si512(), vb, _mm512_loadu_si512(xq + 128 * h + 64));
          isum[t] = _mm512_add_epi32(isum[t], _mm512_madd_epi16(dpa, sa));
          isum[t] = _mm512_add_epi32(isum[t], _mm512_madd_epi16(dpb, sb));
        }
      }
      // codes are value + 32: subtract 32 * sum over sub-blocks of scale * sum(q)
      const float d = h2f(blk->d);
      for (int t = 0; t < NT; ++t) {
        const __m512i xs = _mm512_loadu_si512(x.s + (t0 + t) * (n / 16) + b * 16);
        isum[t] = _mm512_sub_epi32(isum[t], _mm512_slli_epi32(_mm512_mullo_epi32(scv, xs), 5));
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_set1_ps(d * x.d[(t0 + t) * (n / 32) + b * 8]), acc[t]);
      }
    }
    for (int t = 0; t < NT; ++t) args.y[(t0 + t) * args.y_stride + r] = _mm512_reduce_add_ps(acc[t]);
  }
}

// ---- IQ4_XS ----
// 256-blocks of eight 32-value sub-blocks with 6-bit signed scales; codes u = table value + 128.
template <int NT>
void gemv_iq4xs(const MatmulArgs& args, int64_t t0) {
  const WeightView& w = *args.w;
  const PreparedActs& x = *args.x;
  const int64_t nb = w.n_in / 256, n = w.n_in;
  alignas(64) int8_t tb[64];
  for (int i = 0; i < 64; ++i) tb[i] = static_cast<int8_t>(kIQ4NLValues[i % 16] + 128);
  const __m512i table = _mm512_load_si512(tb);
  const __m512i m4 = _mm512_set1_epi8(15);
  // 128-bit lane k of a 64-byte load holds sub-block 4c + k
  const __m512i idx0 = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  const __m512i idx1 = _mm512_add_epi32(idx0, _mm512_set1_epi32(4));
  const __m256i shl = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);  // scales_l nibble j
  const __m256i shh = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);    // scales_h 2 bits of j
  for (int64_t r = args.row_begin; r < args.row_end; ++r) {
    const auto* blk = reinterpret_cast<const block_iq4_xs*>(w.data + static_cast<size_t>(r) * w.row_bytes);
    __m512 acc[NT];
    __m256 accc[NT];
    for (int t = 0; t < NT; ++t) {
      acc[t] = _mm512_setzero_ps();
      accc[t] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < nb; ++b, ++blk) {
      uint32_t sl;
      std::memcpy(&sl, blk->scales_l, 4);
      const __m256i lo4 = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(sl)), shl), _mm256_set1_epi32(15));
      const __m256i hi2 = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(blk->scales_h), shh), _mm256_set1_epi32(3));
      const __m256i ls = _mm256_sub_epi32(_mm256_or_si256(lo4, _mm256_slli_epi32(hi2, 4)), _mm256_set1_epi32(32));
      const __m512i ls512 = _mm512_castsi256_si512(ls);
      const __m512i sc[2] = {_mm512_permutexvar_epi32(idx0, ls512), _mm512_permutexvar_epi32(idx1, ls512)};
      __m512i isum[NT];
      for (int t = 0; t < NT; ++t) isum[t] = _mm512_setzero_si512();
      for (int c = 0; c < 2; ++c) {
        const __m512i q = _mm512_loadu_si512(blk->qs + 64 * c);
        const __m512i ulo = _mm512_shuffle_epi8(table, _mm512_and_si512(q, m4));
        const __m512i uhi = _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16(q, 4), m4));
        for (int t = 0; t < NT; ++t) {
          const int8_t* xq = x.qs + (t0 + t) * n + b * 256 + 128 * c;
          const __m512i x0 = _mm512_loadu_si512(xq), x1 = _mm512_loadu_si512(xq + 64);
          const __m512i xlo = _mm512_shuffle_i64x2(x0, x1, _MM_SHUFFLE(2, 0, 2, 0));  // values 0..15 of each
          const __m512i xhi = _mm512_shuffle_i64x2(x0, x1, _MM_SHUFFLE(3, 1, 3, 1));  // values 16..31
          const __m512i dp = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), ulo, xlo), uhi, xhi);
          isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(dp, sc[c]));
        }
      }
      const float d = h2f(blk->d);
      for (int t = 0; t < NT; ++t) {
        const int64_t xb = (t0 + t) * (n / 32) + b * 8;
        const float dd = d * x.d[xb];
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_set1_ps(dd), acc[t]);
        // codes are value + 128: 128 * sum over sub-blocks of scale * sum(q)
        const __m256i corr = _mm256_mullo_epi32(ls, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.s32 + xb)));
        accc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_slli_epi32(corr, 7)), _mm256_set1_ps(dd), accc[t]);
      }
    }
    for (int t = 0; t < NT; ++t) args.y[(t0 + t) * args.y_stride + r] = _mm512_reduce_add_ps(acc[t]) - hsum256(accc[t]);
  }
}

// ---- 32-value blocks ----
// Codes of one block (32 values in order) as u8 = value + z, and the block's scale.
template <GgmlType T>
inline __m256i block_codes(const uint8_t* blk, __m256i table) {
  if constexpr (T == GgmlType::Q8_0) {
    return _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2)),
                            _mm256_set1_epi8(static_cast<char>(0x80)));
  } else if constexpr (T == GgmlType::Q4_0) {
    return nibbles32(blk + 2);
  } else if constexpr (T == GgmlType::Q5_0) {
    uint32_t qh;
    std::memcpy(&qh, blk + 2, 4);
    const __m256i u = nibbles32(blk + 6);
    return _mm256_mask_add_epi8(u, static_cast<__mmask32>(qh), u, _mm256_set1_epi8(16));
  } else if constexpr (T == GgmlType::IQ4_NL) {
    return _mm256_shuffle_epi8(table, nibbles32(blk + 2));
  } else {  // MXFP4
    return _mm256_shuffle_epi8(table, nibbles32(blk + 1));
  }
}

template <GgmlType T>
inline float block_scale(const uint8_t* blk) {
  if constexpr (T == GgmlType::MXFP4) return unpack_f32_bits(blk[0] < 2 ? 0x00200000u << blk[0] : uint32_t(blk[0] - 1) << 23);
  else return h2f(*reinterpret_cast<const uint16_t*>(blk));
}

// Scales of 8 consecutive blocks (f32), in block order.
template <GgmlType T>
inline __m256 block_scales8(const uint8_t* blk, size_t bsize) {
  const __m256i offs = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(static_cast<int>(bsize)));
  const __m256i raw = _mm256_i32gather_epi32(reinterpret_cast<const int*>(blk), offs, 1);
  if constexpr (T == GgmlType::MXFP4) {
    // 2^(e-128) from the exponent byte; e < 2 gives subnormals (0x00200000 << e)
    const __m256i e = _mm256_and_si256(raw, _mm256_set1_epi32(0xff));
    const __m256i normal = _mm256_slli_epi32(_mm256_sub_epi32(e, _mm256_set1_epi32(1)), 23);
    const __m256i sub = _mm256_sllv_epi32(_mm256_set1_epi32(0x00200000), e);
    const __mmask8 small = _mm256_cmplt_epi32_mask(e, _mm256_set1_epi32(2));
    return _mm256_castsi256_ps(_mm256_mask_mov_epi32(normal, small, sub));
  } else {
    return _mm256_cvtph_ps(_mm256_cvtepi32_epi16(raw));
  }
}

template <GgmlType T, int NT>
void gemv_b32(const MatmulArgs& args, int64_t t0) {
  const WeightView& w = *args.w;
  const PreparedActs& x = *args.x;
  const int64_t nb = w.n_in / 32, n = w.n_in;
  const size_t bsize = type_traits(T).type_size;
  constexpr int zshift = (T == GgmlType::Q4_0) ? 3 : (T == GgmlType::Q5_0) ? 4 : 7;  // z = 8, 16, 128
  __m256i table = _mm256_setzero_si256();
  if constexpr (T == GgmlType::IQ4_NL || T == GgmlType::MXFP4) {
    alignas(32) int8_t tb[32];
    for (int i = 0; i < 32; ++i)
      tb[i] = static_cast<int8_t>((T == GgmlType::IQ4_NL ? kIQ4NLValues[i % 16] : kMXFP4Values[i % 16]) + 128);
    table = _mm256_load_si256(reinterpret_cast<const __m256i*>(tb));
  }
  constexpr bool kNibbles = T == GgmlType::Q4_0 || T == GgmlType::IQ4_NL || T == GgmlType::MXFP4;
  const __m512i table512 = _mm512_broadcast_i32x4(_mm256_castsi256_si128(table));
  // the lane sums come out of the reduction in block order 0,2,4,6,1,3,5,7
  const __m256i unshuffle = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t r = args.row_begin; r < args.row_end; ++r) {
    const uint8_t* row = w.data + static_cast<size_t>(r) * w.row_bytes;
    __m256 acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
    int64_t b = 0;
    // groups of 8 blocks: 4 dot products of 2 blocks each, reduced to 8 block sums at once
    for (; b + 8 <= nb; b += 8) {
      const uint8_t* g = row + b * bsize;
      __m512i dp[NT][4];
      for (int p = 0; p < 4; ++p) {
        const uint8_t* ba = g + (2 * p) * bsize;
        const uint8_t* bb = ba + bsize;
        __m512i u;
        if constexpr (kNibbles) {
          // both blocks' nibbles at once: 128-bit lanes [lo A, lo B, hi A, hi B]; activations to match
          const int off = T == GgmlType::MXFP4 ? 1 : 2;
          const __m256i q = _mm256_inserti128_si256(
              _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ba + off))),
              _mm_loadu_si128(reinterpret_cast<const __m128i*>(bb + off)), 1);
          u = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1),
                               _mm512_set1_epi8(15));
          if constexpr (T != GgmlType::Q4_0) u = _mm512_shuffle_epi8(table512, u);
        } else {
          u = _mm512_inserti64x4(_mm512_castsi256_si512(block_codes<T>(ba, table)), block_codes<T>(bb, table), 1);
        }
        for (int t = 0; t < NT; ++t) {
          __m512i xv = _mm512_loadu_si512(x.qs + (t0 + t) * n + 32 * (b + 2 * p));
          if constexpr (kNibbles) xv = _mm512_shuffle_i64x2(xv, xv, _MM_SHUFFLE(3, 1, 2, 0));
          dp[t][p] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, xv);
        }
      }
      const __m256 wscale = block_scales8<T>(g, bsize);
      for (int t = 0; t < NT; ++t) {
        const __m512i* d4 = dp[t];
        const __m512i a0 = _mm512_add_epi32(_mm512_unpacklo_epi32(d4[0], d4[1]), _mm512_unpackhi_epi32(d4[0], d4[1]));
        const __m512i a1 = _mm512_add_epi32(_mm512_unpacklo_epi32(d4[2], d4[3]), _mm512_unpackhi_epi32(d4[2], d4[3]));
        const __m512i b4 = _mm512_add_epi32(_mm512_unpacklo_epi64(a0, a1), _mm512_unpackhi_epi64(a0, a1));
        // block A of each pair is in 128-bit lanes 0+1 (nibble layout: 0+2), block B in 2+3 (1+3)
        const __m512i c = kNibbles ? _mm512_add_epi32(_mm512_shuffle_i64x2(b4, b4, 0x44), _mm512_shuffle_i64x2(b4, b4, 0xee))
                                   : _mm512_add_epi32(_mm512_shuffle_i64x2(b4, b4, 0x88), _mm512_shuffle_i64x2(b4, b4, 0xdd));
        __m256i sums = _mm256_permutevar8x32_epi32(_mm512_castsi512_si256(c), unshuffle);
        const int64_t xb = (t0 + t) * (n / 32) + b;
        sums = _mm256_sub_epi32(sums, _mm256_slli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.s32 + xb)), zshift));
        const __m256 scale = _mm256_mul_ps(wscale, _mm256_loadu_ps(x.d + xb));
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), scale, acc[t]);
      }
    }
    float tail[NT] = {};
    for (; b < nb; ++b) {
      const uint8_t* blk = row + b * bsize;
      const __m256i u = block_codes<T>(blk, table);
      const float a = block_scale<T>(blk);
      for (int t = 0; t < NT; ++t) {
        const int64_t xb = (t0 + t) * (n / 32) + b;
        const __m256i dp = _mm256_dpbusd_epi32(_mm256_setzero_si256(), u,
                                               _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs + 32 * xb)));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(dp), _mm256_extracti128_si256(dp, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
        const int32_t isum = _mm_cvtsi128_si32(s4) - (x.s32[xb] << zshift);
        tail[t] += a * x.d[xb] * static_cast<float>(isum);
      }
    }
    for (int t = 0; t < NT; ++t) args.y[(t0 + t) * args.y_stride + r] = hsum256(acc[t]) + tail[t];
  }
}

// All tokens of a work item, up to 4 at a time (the weights are decoded once per group).
template <typename Fn>
void token_groups(const MatmulArgs& a, Fn&& run) {
  int64_t t0 = 0;
  for (; t0 + 4 <= a.x->n_tokens; t0 += 4) run(std::integral_constant<int, 4>{}, t0);
  switch (a.x->n_tokens - t0) {
    case 3: run(std::integral_constant<int, 3>{}, t0); break;
    case 2: run(std::integral_constant<int, 2>{}, t0); break;
    case 1: run(std::integral_constant<int, 1>{}, t0); break;
    default: break;
  }
}

}  // namespace

void gemv_q4_K_avx512(const MatmulArgs& a) { token_groups(a, [&](auto nt, int64_t t0) { gemv_qk45<false, nt()>(a, t0); }); }
void gemv_q5_K_avx512(const MatmulArgs& a) { token_groups(a, [&](auto nt, int64_t t0) { gemv_qk45<true, nt()>(a, t0); }); }
void gemv_q6_K_avx512(const MatmulArgs& a) { token_groups(a, [&](auto nt, int64_t t0) { gemv_q6k<nt()>(a, t0); }); }
void gemv_q8_0_avx512(const MatmulArgs& a) { token_groups(a, [&](auto nt, int64_t t0) { gemv_b32<GgmlType::Q8_0, nt()>(a, t0); }); }
void gemv_q4_0_avx512(const MatmulArgs& a) { token_groups(a, [&](auto nt, int64_t t0) { gemv_b32<GgmlType::Q4_0, nt()>(a, t0); }); }
void gemv_q5_0_avx512(const MatmulArgs& a) { token_groups(a, [&](auto nt, int64_t t0) { gemv_b32<GgmlType::Q5_0, nt()>(a, t0); }); }
void gemv_iq4_nl_avx512(const MatmulArgs& a) { token_groups(a, [&](auto nt, int64_t t0) { gemv_b32<GgmlType::IQ4_NL, nt()>(a, t0); }); }
void gemv_iq4_xs_avx512(const MatmulArgs& a) { token_groups(a, [&](auto nt, int64_t t0) { gemv_iq4xs<nt()>(a, t0); }); }
void gemv_mxfp4_avx512(const MatmulArgs& a) { token_groups(a, [&](auto nt, int64_t t0) { gemv_b32<GgmlType::MXFP4, nt()>(a, t0); }); }

}  // namespace tessera::ops
