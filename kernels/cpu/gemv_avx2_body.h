// Fused 256-bit single-token kernels shared by gemv_avx2.cpp (maddubs) and gemv_avxvnni.cpp (AVX-VNNI
// vpdpbusd): each weight block is decoded in registers and dotted with the Q8 activations.
//   K-quants (codes u >= 0): lane sums scaled by the integer sub-block scales (vpmaddwd; the scales
//   decoded once per block and picked by a byte shuffle), one f32 FMA per 256-block; mins / the Q6_K
//   offset from the activation sums.
//   32-blocks: signed codes through |w| x sign(x, w), one f32 FMA per block.
// Included once per ISA translation unit; internal linkage only.
#pragma once
#include <immintrin.h>

#include "kernels/cpu/scratch.h"
#include "kernels/cpu/simd256.h"
#include "kernels/cpu/unpack.h"

namespace tessera::ops {
namespace {

// 8 int32 lanes, each the sum of 4 products u8 x s8 (u <= 127 without VNNI: maddubs must not saturate).
inline __m256i dot_u8s8(__m256i u, __m256i x) {
#if defined(__AVXVNNI__)
  return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, x);
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), _mm256_set1_epi16(1));
#endif
}

// Same for signed weights w (|w| <= 128, |x| <= 127).
inline __m256i dot_s8s8(__m256i w, __m256i x) { return dot_u8s8(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w)); }

// Sub-block scales as int16 lanes (both 128-bit halves hold the same 8): pick_scales(s, ctl) puts scale i
// (ctl's low half) and scale j (high half) where vpmaddwd meets the int16 pair sums of maddubs, or, with
// VNNI, the int32 lane sums of vpdpbusd (scale in the low 16 bits, 0 above: the lane sums fit in int16).
struct ScaleCtl {
  alignas(32) int8_t b[32];
};
constexpr ScaleCtl scale_ctl(int i, int j) {
  ScaleCtl c{};
  for (int k = 0; k < 32; ++k) {
    const int idx = k < 16 ? i : j;
#if defined(__AVXVNNI__)
    c.b[k] = static_cast<int8_t>(k % 4 < 2 ? 2 * idx + k % 2 : -128);
#else
    c.b[k] = static_cast<int8_t>(2 * idx + k % 2);
#endif
  }
  return c;
}
inline __m256i pick_scales(__m256i s16, const ScaleCtl& c) {
  return _mm256_shuffle_epi8(s16, _mm256_load_si256(reinterpret_cast<const __m256i*>(c.b)));
}

// dot_u8s8 of codes u <= 63 times the scales picked by pick_scales (maddubs pair sums <= 16002: no saturation).
inline __m256i dot_u8s8_scaled(__m256i u, __m256i x, __m256i scales) {
#if defined(__AVXVNNI__)
  return _mm256_madd_epi16(dot_u8s8(u, x), scales);
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), scales);
#endif
}

// The 6-bit scales and mins of a Q4_K / Q5_K block (12 bytes at s) as 8 bytes each (see k_scales).
inline void k_scales64(const uint8_t* s, uint64_t& sc, uint64_t& mn) {
  uint32_t w[3];
  std::memcpy(w, s, 12);
  sc = static_cast<uint64_t>(w[0] & 0x3f3f3f3f) | static_cast<uint64_t>((w[2] & 0x0f0f0f0f) | ((w[0] >> 6) & 0x03030303) << 4) << 32;
  mn = static_cast<uint64_t>(w[1] & 0x3f3f3f3f) | static_cast<uint64_t>(((w[2] >> 4) & 0x0f0f0f0f) | ((w[1] >> 6) & 0x03030303) << 4) << 32;
}

template <bool FIVE>
void gemv_qk45_256(const MatmulArgs& args) {
  static constexpr ScaleCtl ctl[8] = {scale_ctl(0, 0), scale_ctl(1, 1), scale_ctl(2, 2), scale_ctl(3, 3),
                                      scale_ctl(4, 4), scale_ctl(5, 5), scale_ctl(6, 6), scale_ctl(7, 7)};
  const WeightView& w = *args.w;
  const PreparedActs& x = *args.x;
  const int64_t nb = w.n_in / 256;
  const size_t bsize = FIVE ? sizeof(block_q5_K) : sizeof(block_q4_K);
  const __m256i m4 = _mm256_set1_epi8(15);
  for (int64_t r = args.row_begin; r < args.row_end; ++r) {
    const uint8_t* blk = w.data + static_cast<size_t>(r) * w.row_bytes;
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b, blk += bsize) {
      const int8_t* xq = x.qs + b * 256;
      uint64_t sc, mn;
      k_scales64(blk + 4, sc, mn);
      const __m256i s16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<int64_t>(sc))));
      const uint8_t* qs = blk + (FIVE ? 48 : 16);
      __m256i qh = _mm256_setzero_si256();
      if constexpr (FIVE) qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16));
      __m256i isum = _mm256_setzero_si256();
      for (int c = 0; c < 4; ++c) {
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * c));
        __m256i lo = _mm256_and_si256(q, m4);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
        if constexpr (FIVE) {
          // bit 2c of qh -> 16 for the low nibbles, bit 2c+1 for the high ones
          const __m256i bl = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), _mm256_set1_epi8(1));
          const __m256i bh = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), _mm256_set1_epi8(1));
          lo = _mm256_or_si256(lo, _mm256_slli_epi16(bl, 4));
          hi = _mm256_or_si256(hi, _mm256_slli_epi16(bh, 4));
        }
        isum = _mm256_add_epi32(isum, dot_u8s8_scaled(lo, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 64 * c)),
                                                      pick_scales(s16, ctl[2 * c])));
        isum = _mm256_add_epi32(isum, dot_u8s8_scaled(hi, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 64 * c + 32)),
                                                      pick_scales(s16, ctl[2 * c + 1])));
      }
      const __m256i mv = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(mn)));
      const __m256i xs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.s32 + b * 8));
      // d and dmin in one conversion, times the activation scale
      int32_t dd;
      std::memcpy(&dd, blk, 4);
      const __m128 ddx = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(dd)), _mm_set1_ps(x.d[b * 8]));
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_broadcastss_ps(ddx), acc);
      accm = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_mullo_epi32(mv, xs)), _mm256_broadcastss_ps(_mm_movehdup_ps(ddx)), accm);
    }
    args.y[r] = hsum256(acc) - hsum256(accm);
  }
}

void gemv_q6k_256(const MatmulArgs& args) {
  // (h, g) = the 32 values of sub-blocks 8h + 2g (lanes 0-3) and 8h + 2g + 1 (lanes 4-7)
  static constexpr ScaleCtl ctl[4] = {scale_ctl(0, 1), scale_ctl(2, 3), scale_ctl(4, 5), scale_ctl(6, 7)};
  const WeightView& w = *args.w;
  const PreparedActs& x = *args.x;
  const int64_t nb = w.n_in / 256;
  const __m256i m4 = _mm256_set1_epi8(15), m3 = _mm256_set1_epi8(3);
  for (int64_t r = args.row_begin; r < args.row_end; ++r) {
    const auto* blk = reinterpret_cast<const block_q6_K*>(w.data + static_cast<size_t>(r) * w.row_bytes);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b, ++blk) {
      const int8_t* xq = x.qs + b * 256;
      const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk->scales));
      __m256i isum = _mm256_setzero_si256();
      for (int h = 0; h < 2; ++h) {
        const __m256i s16 = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(h ? _mm_srli_si128(sc8, 8) : sc8));
        const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->ql + 64 * h));
        const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->ql + 64 * h + 32));
        const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->qh + 32 * h));
        __m256i v[4];
        v[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4));
        v[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m3), 4));
        v[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m3), 4));
        v[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m3), 4));
        for (int g = 0; g < 4; ++g)
          isum = _mm256_add_epi32(isum, dot_u8s8_scaled(v[g], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 128 * h + 32 * g)),
                                                        pick_scales(s16, ctl[g])));
      }
      // codes are value + 32
      const __m256i sc_lo = _mm256_cvtepi8_epi32(sc8);
      const __m256i sc_hi = _mm256_cvtepi8_epi32(_mm_srli_si128(sc8, 8));
      const __m256i corr = _mm256_add_epi32(
          _mm256_mullo_epi32(sc_lo, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.s + b * 16))),
          _mm256_mullo_epi32(sc_hi, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.s + b * 16 + 8))));
      isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(corr, 5));
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(_cvtsh_ss(blk->d) * x.d[b * 8]), acc);
    }
    args.y[r] = hsum256(acc);
  }
}

// 32-value blocks. Q4_0 / Q5_0: unsigned codes u (nibble, 5 bits) dotted as they are, the offset z (8, 16)
// taken off through the activation sums: sum((u - z) x) = sum(u x) - z sum(x). Signed codes (Q8_0,
// IQ4_NL, MXFP4) through |w| x sign(x, w). The f16 scales of 8 blocks are converted together and times
// the activation scales in one multiply; one f32 FMA per block.
template <GgmlType T>
inline __m256i b32_codes(const uint8_t* blk, __m256i table) {
  if constexpr (T == GgmlType::Q8_0) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
  } else if constexpr (T == GgmlType::Q4_0) {
    return nibbles32(blk + 2);
  } else if constexpr (T == GgmlType::Q5_0) {
    uint32_t qh;
    std::memcpy(&qh, blk + 2, 4);
    // bit j of qh -> byte j: spread the 4 qh bytes over the lanes, test one bit per byte
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(qh)),
                                               _mm256_setr_epi64x(0, 0x0101010101010101LL, 0x0202020202020202LL, 0x0303030303030303LL));
    const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ULL));
    const __m256i hb = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);  // 0xff where set
    return _mm256_or_si256(nibbles32(blk + 6), _mm256_and_si256(hb, _mm256_set1_epi8(16)));
  } else if constexpr (T == GgmlType::IQ4_NL) {
    return _mm256_shuffle_epi8(table, nibbles32(blk + 2));
  } else {
    return _mm256_shuffle_epi8(table, nibbles32(blk + 1));
  }
}

// Nibble types: two blocks A, B per register pair, lo = [A 0-15 | B 0-15], hi = [A 16-31 | B 16-31]:
// one 256-bit load and three ops make 64 codes (per block: a 128-bit load, a shift, an insert, an and),
// and the two halves' dot products add into one vector of A's and B's lane sums. The activations are
// permuted to match once per call (pair_acts).
template <GgmlType T>
inline void pair_codes(const uint8_t* a, const uint8_t* b, __m256i table, __m256i& lo, __m256i& hi) {
  constexpr int off = T == GgmlType::MXFP4 ? 1 : T == GgmlType::Q5_0 ? 6 : 2;
  const __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + off))),
                                            _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + off)), 1);
  const __m256i m4 = _mm256_set1_epi8(15);
  lo = _mm256_and_si256(q, m4);
  hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
  if constexpr (T == GgmlType::Q5_0) {
    // value j's fifth bit is bit j of qh: bytes 0-3 of the broadcast word hold A's qh, 4-7 B's
    uint32_t ha, hb;
    std::memcpy(&ha, a + 2, 4);
    std::memcpy(&hb, b + 2, 4);
    const __m256i h = _mm256_set1_epi64x(static_cast<int64_t>(ha | static_cast<uint64_t>(hb) << 32));
    const __m256i sel_lo = _mm256_setr_epi64x(0, 0x0101010101010101LL, 0x0404040404040404LL, 0x0505050505050505LL);
    const __m256i sel_hi = _mm256_setr_epi64x(0x0202020202020202LL, 0x0303030303030303LL, 0x0606060606060606LL,
                                              0x0707070707070707LL);
    const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ULL));
    const __m256i sixteen = _mm256_set1_epi8(16);
    auto fifth = [&](__m256i sel) {
      return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(h, sel), bit), bit), sixteen);
    };
    lo = _mm256_or_si256(lo, fifth(sel_lo));
    hi = _mm256_or_si256(hi, fifth(sel_hi));
  } else if constexpr (T == GgmlType::IQ4_NL || T == GgmlType::MXFP4) {
    lo = _mm256_shuffle_epi8(table, lo);
    hi = _mm256_shuffle_epi8(table, hi);
  }
}

// The activations of blocks 0 .. nb8-1 in pair order: per pair [A 0-15, B 0-15, A 16-31, B 16-31].
inline const int8_t* pair_acts(const int8_t* xq, int64_t nb8) {
  int8_t* xp = reinterpret_cast<int8_t*>(cpu_kernel_scratch(3, static_cast<size_t>(32 * nb8)));
  for (int64_t b = 0; b < nb8; b += 2) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32 * b));
    const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32 * b + 32));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(xp + 32 * b), _mm256_permute2x128_si256(a, c, 0x20));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(xp + 32 * b + 32), _mm256_permute2x128_si256(a, c, 0x31));
  }
  return xp;
}

template <GgmlType T>
void gemv_b32_256(const MatmulArgs& args) {
  constexpr bool kOffset = T == GgmlType::Q4_0 || T == GgmlType::Q5_0;
  constexpr bool kF16Scale = T != GgmlType::MXFP4;
  constexpr float kZ = T == GgmlType::Q4_0 ? 8.0f : 16.0f;
  const WeightView& w = *args.w;
  const PreparedActs& x = *args.x;
  const int64_t nb = w.n_in / 32;
  const size_t bsize = type_traits(T).type_size;
  __m256i table = _mm256_setzero_si256();
  if constexpr (T == GgmlType::IQ4_NL || T == GgmlType::MXFP4) {
    alignas(32) int8_t tb[32];
    for (int i = 0; i < 32; ++i) tb[i] = T == GgmlType::IQ4_NL ? kIQ4NLValues[i % 16] : kMXFP4Values[i % 16];
    table = _mm256_load_si256(reinterpret_cast<const __m256i*>(tb));
  }
  auto dot = [&](const uint8_t* blk, int64_t b) {
    const __m256i v = b32_codes<T>(blk, table);
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs + 32 * b));
    if constexpr (kOffset) return _mm256_cvtepi32_ps(dot_u8s8(v, xv));
    else return _mm256_cvtepi32_ps(dot_s8s8(v, xv));
  };
  auto scale = [&](const uint8_t* blk) {
    if constexpr (T == GgmlType::MXFP4) return unpack_f32_bits(blk[0] < 2 ? 0x00200000u << blk[0] : uint32_t(blk[0] - 1) << 23);
    else return _cvtsh_ss(*reinterpret_cast<const uint16_t*>(blk));
  };
  constexpr bool kPairs = T != GgmlType::Q8_0 && kF16Scale;  // MXFP4 runs the per-block loop
  const int8_t* xp = kPairs ? pair_acts(x.qs, nb / 8 * 8) : nullptr;
  // pair dot products: lanes 0-3 hold block A's sums, 4-7 block B's
  auto pair_dot = [&](const uint8_t* a, const uint8_t* b, int64_t ib) {
    __m256i lo, hi;
    pair_codes<T>(a, b, table, lo, hi);
    const __m256i xlo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xp + 32 * ib));
    const __m256i xhi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xp + 32 * ib + 32));
    if constexpr (kOffset) return _mm256_cvtepi32_ps(_mm256_add_epi32(dot_u8s8(lo, xlo), dot_u8s8(hi, xhi)));
    else return _mm256_cvtepi32_ps(_mm256_add_epi32(dot_s8s8(lo, xlo), dot_s8s8(hi, xhi)));
  };
  for (int64_t r = args.row_begin; r < args.row_end; ++r) {
    const uint8_t* blk = w.data + static_cast<size_t>(r) * w.row_bytes;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), corr8 = _mm256_setzero_ps();
    float corr = 0.0f;  // offset types: sum over blocks of d dx sum(x)
    int64_t b = 0;
    if constexpr (kF16Scale) {
      for (; b + 8 <= nb; b += 8, blk += 8 * bsize) {
        __m128i dh = _mm_setzero_si128();
        dh = _mm_insert_epi16(dh, *reinterpret_cast<const uint16_t*>(blk), 0);
        dh = _mm_insert_epi16(dh, *reinterpret_cast<const uint16_t*>(blk + bsize), 1);
        dh = _mm_insert_epi16(dh, *reinterpret_cast<const uint16_t*>(blk + 2 * bsize), 2);
        dh = _mm_insert_epi16(dh, *reinterpret_cast<const uint16_t*>(blk + 3 * bsize), 3);
        dh = _mm_insert_epi16(dh, *reinterpret_cast<const uint16_t*>(blk + 4 * bsize), 4);
        dh = _mm_insert_epi16(dh, *reinterpret_cast<const uint16_t*>(blk + 5 * bsize), 5);
        dh = _mm_insert_epi16(dh, *reinterpret_cast<const uint16_t*>(blk + 6 * bsize), 6);
        dh = _mm_insert_epi16(dh, *reinterpret_cast<const uint16_t*>(blk + 7 * bsize), 7);
        const __m256 ad = _mm256_mul_ps(_mm256_cvtph_ps(dh), _mm256_loadu_ps(x.d + b));
        if constexpr (kOffset)
          corr8 = _mm256_fmadd_ps(ad, _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.s32 + b))), corr8);
        if constexpr (kPairs) {
          for (int k = 0; k < 8; k += 4) {
            const __m256i ia = _mm256_setr_epi32(k, k, k, k, k + 1, k + 1, k + 1, k + 1);
            const __m256i ib = _mm256_add_epi32(ia, _mm256_set1_epi32(2));
            acc0 = _mm256_fmadd_ps(pair_dot(blk + k * bsize, blk + (k + 1) * bsize, b + k), _mm256_permutevar8x32_ps(ad, ia), acc0);
            acc1 = _mm256_fmadd_ps(pair_dot(blk + (k + 2) * bsize, blk + (k + 3) * bsize, b + k + 2),
                                   _mm256_permutevar8x32_ps(ad, ib), acc1);
          }
        } else {
          for (int k = 0; k < 8; k += 2) {
            acc0 = _mm256_fmadd_ps(dot(blk + k * bsize, b + k), _mm256_permutevar8x32_ps(ad, _mm256_set1_epi32(k)), acc0);
            acc1 = _mm256_fmadd_ps(dot(blk + (k + 1) * bsize, b + k + 1), _mm256_permutevar8x32_ps(ad, _mm256_set1_epi32(k + 1)), acc1);
          }
        }
      }
    }
    for (; b < nb; ++b, blk += bsize) {
      const float ad = scale(blk) * x.d[b];
      if constexpr (kOffset) corr += ad * static_cast<float>(x.s32[b]);
      acc0 = _mm256_fmadd_ps(dot(blk, b), _mm256_set1_ps(ad), acc0);
    }
    float y = hsum256(_mm256_add_ps(acc0, acc1));
    if constexpr (kOffset) y -= kZ * (corr + hsum256(corr8));
    args.y[r] = y;
  }
}

}  // namespace
}  // namespace tessera::ops
