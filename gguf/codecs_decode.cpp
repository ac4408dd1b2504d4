// Reference decoders (dequantize_row) for every supported ggml type: one plain scalar function per
// type, computing in exactly ggml's float operation order so results are bit-identical with ggml.
#include <cstring>

#include "core/error.h"
#include "gguf/codecs.h"
#include "gguf/codecs_internal.h"
#include "gguf/half.h"
#include "gguf/quant_blocks.h"

// Bit-exactness depends on every multiply and add rounding separately: never fuse into FMA.
#pragma clang fp contract(off)

namespace tessera {
namespace {

void decode_f32(const float* x, float* y, int64_t n) { std::memcpy(y, x, static_cast<size_t>(n) * 4); }

void decode_f16(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fp16_to_fp32(x[i]);
}

void decode_bf16(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_fp32(x[i]);
}

// y[j] = (low nibble - 8) * d, y[j+16] = (high nibble - 8) * d
void decode_q4_0(const block_q4_0* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK4_0) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
      y[j] = ((x[i].qs[j] & 15) - 8) * d;
      y[j + 16] = ((x[i].qs[j] >> 4) - 8) * d;
    }
  }
}

// y = q * d + m
void decode_q4_1(const block_q4_1* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK4_1) {
    const float d = fp16_to_fp32(x[i].d), m = fp16_to_fp32(x[i].m);
    for (int j = 0; j < QK4_1 / 2; ++j) {
      y[j] = (x[i].qs[j] & 15) * d + m;
      y[j + 16] = (x[i].qs[j] >> 4) * d + m;
    }
  }
}

// 5th bit of value j is bit j of qh (little-endian u32).
inline uint32_t load_qh(const uint8_t* qh) {
  return uint32_t(qh[0]) | uint32_t(qh[1]) << 8 | uint32_t(qh[2]) << 16 | uint32_t(qh[3]) << 24;
}

void decode_q5_0(const block_q5_0* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK5_0) {
    const float d = fp16_to_fp32(x[i].d);
    const uint32_t qh = load_qh(x[i].qh);
    for (int j = 0; j < QK5_0 / 2; ++j) {
      const int q0 = int((x[i].qs[j] & 15) | (((qh >> j) & 1) << 4)) - 16;
      const int q1 = int((x[i].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16;
      y[j] = q0 * d;
      y[j + 16] = q1 * d;
    }
  }
}

void decode_q5_1(const block_q5_1* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK5_1) {
    const float d = fp16_to_fp32(x[i].d), m = fp16_to_fp32(x[i].m);
    const uint32_t qh = load_qh(x[i].qh);
    for (int j = 0; j < QK5_1 / 2; ++j) {
      const int q0 = int((x[i].qs[j] & 15) | (((qh >> j) & 1) << 4));
      const int q1 = int((x[i].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4));
      y[j] = q0 * d + m;
      y[j + 16] = q1 * d + m;
    }
  }
}

void decode_q8_0(const block_q8_0* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK8_0) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < QK8_0; ++j) y[j] = x[i].qs[j] * d;
  }
}

// Q2_K: 16 sub-blocks of 16; scales[k] = scale (low nibble) | min (high nibble). Each 128-value half
// uses 32 bytes of qs; 2-bit field `shift` of byte l holds value 32*(shift/2) + l.
void decode_q2_K(const block_q2_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(x[i].d), dmin = fp16_to_fp32(x[i].dmin);
    const uint8_t* q = x[i].qs;
    int is = 0;
    for (int half = 0; half < 2; ++half, q += 32) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int part = 0; part < 2; ++part) {  // bytes 0..15, then 16..31
          const uint8_t sc = x[i].scales[is++];
          const float dl = d * (sc & 15), ml = dmin * (sc >> 4);
          for (int l = 0; l < 16; ++l) *y++ = dl * ((q[16 * part + l] >> shift) & 3) - ml;
        }
      }
    }
  }
}

// Q3_K sub-block scale k (0..15), 6 bits stored as (value + 32): low 4 bits in nibble k/8 of byte
// k%8, high 2 bits at bit 2*(k/4) of byte 8 + k%4.
inline int q3_K_scale(const uint8_t* s, int k) {
  const int lo = (s[k % 8] >> (4 * (k / 8))) & 15;
  const int hi = (s[8 + k % 4] >> (2 * (k / 4))) & 3;
  return (lo | hi << 4) - 32;
}

// Q3_K: 2-bit low part in qs (laid out as Q2_K), 3rd bit in hmask (bit b of hmask[l] belongs to value
// 32*b + l); a clear high bit means subtract 4.
void decode_q3_K(const block_q3_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d_all = fp16_to_fp32(x[i].d);
    const uint8_t* q = x[i].qs;
    const uint8_t* hm = x[i].hmask;
    uint8_t m = 1;
    int is = 0;
    for (int half = 0; half < 2; ++half, q += 32) {
      for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
        for (int part = 0; part < 2; ++part) {
          const float dl = d_all * q3_K_scale(x[i].scales, is++);
          for (int l = 0; l < 16; ++l) {
            const int k = 16 * part + l;
            *y++ = dl * (((q[k] >> shift) & 3) - ((hm[k] & m) ? 0 : 4));
          }
        }
      }
    }
  }
}

// Q4_K / Q5_K 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes.
inline void k4_scale_min(const uint8_t* s, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

void decode_q4_K(const block_q4_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(x[i].d), dmin = fp16_to_fp32(x[i].dmin);
    const uint8_t* q = x[i].qs;
    for (int c = 0; c < 4; ++c, q += 32) {  // 64 values per 32 bytes: low nibbles, then high
      int sc, m;
      k4_scale_min(x[i].scales, 2 * c, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      k4_scale_min(x[i].scales, 2 * c + 1, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 15) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
    }
  }
}

void decode_q5_K(const block_q5_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(x[i].d), dmin = fp16_to_fp32(x[i].dmin);
    const uint8_t* ql = x[i].qs;
    const uint8_t* qh = x[i].qh;
    for (int c = 0; c < 4; ++c, ql += 32) {
      int sc, m;
      k4_scale_min(x[i].scales, 2 * c, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      k4_scale_min(x[i].scales, 2 * c + 1, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      const uint8_t u1 = uint8_t(1 << (2 * c)), u2 = uint8_t(2 << (2 * c));
      for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 15) + ((qh[l] & u1) ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
    }
  }
}

// Q6_K: two halves of 128; value = (4 low bits from ql | 2 high bits from qh) - 32, times d*sc.
void decode_q6_K(const block_q6_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const uint8_t* ql = x[i].ql;
    const uint8_t* qh = x[i].qh;
    const int8_t* sc = x[i].scales;
    for (int half = 0; half < 2; ++half, ql += 64, qh += 32, sc += 8, y += 128) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = int((ql[l] & 15) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = int((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * sc[is + 0] * q1;
        y[l + 32] = d * sc[is + 2] * q2;
        y[l + 64] = d * sc[is + 4] * q3;
        y[l + 96] = d * sc[is + 6] * q4;
      }
    }
  }
}

void decode_q8_K(const block_q8_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK_K)
    for (int j = 0; j < QK_K; ++j) y[j] = x[i].d * x[i].qs[j];
}

void decode_iq4_nl(const block_iq4_nl* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK4_NL) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < QK4_NL / 2; ++j) {
      y[j] = d * kIQ4NLValues[x[i].qs[j] & 15];
      y[j + 16] = d * kIQ4NLValues[x[i].qs[j] >> 4];
    }
  }
}

// IQ4_XS: 8 sub-blocks of 32, 6-bit scale ls (low 4 bits in scales_l, high 2 in scales_h), dl = d*(ls-32).
void decode_iq4_xs(const block_iq4_xs* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const uint8_t* qs = x[i].qs;
    for (int ib = 0; ib < QK_K / 32; ++ib, qs += 16, y += 32) {
      const int ls = ((x[i].scales_l[ib / 2] >> (4 * (ib % 2))) & 15) | (((x[i].scales_h >> (2 * ib)) & 3) << 4);
      const float dl = d * (ls - 32);
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * kIQ4NLValues[qs[j] & 15];
        y[j + 16] = dl * kIQ4NLValues[qs[j] >> 4];
      }
    }
  }
}

void decode_mxfp4(const block_mxfp4* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK_MXFP4) {
    const float d = codec::e8m0_half(x[i].e);
    for (int j = 0; j < QK_MXFP4 / 2; ++j) {
      y[j] = kMXFP4Values[x[i].qs[j] & 15] * d;
      y[j + 16] = kMXFP4Values[x[i].qs[j] >> 4] * d;
    }
  }
}

}  // namespace

bool has_decoder(GgmlType t) { return codec::has_row_codec(t); }

void dequantize_row(GgmlType t, const void* src, float* dst, int64_t n) {
  if (!has_decoder(t)) throw_error("dequantize_row: no decoder for type {}", type_name(t));
  const int64_t nb = codec::row_blocks("dequantize_row", t, n);
  switch (t) {
    case GgmlType::F32: return decode_f32(static_cast<const float*>(src), dst, n);
    case GgmlType::F16: return decode_f16(static_cast<const uint16_t*>(src), dst, n);
    case GgmlType::BF16: return decode_bf16(static_cast<const uint16_t*>(src), dst, n);
    case GgmlType::Q4_0: return decode_q4_0(static_cast<const block_q4_0*>(src), dst, nb);
    case GgmlType::Q4_1: return decode_q4_1(static_cast<const block_q4_1*>(src), dst, nb);
    case GgmlType::Q5_0: return decode_q5_0(static_cast<const block_q5_0*>(src), dst, nb);
    case GgmlType::Q5_1: return decode_q5_1(static_cast<const block_q5_1*>(src), dst, nb);
    case GgmlType::Q8_0: return decode_q8_0(static_cast<const block_q8_0*>(src), dst, nb);
    case GgmlType::Q2_K: return decode_q2_K(static_cast<const block_q2_K*>(src), dst, nb);
    case GgmlType::Q3_K: return decode_q3_K(static_cast<const block_q3_K*>(src), dst, nb);
    case GgmlType::Q4_K: return decode_q4_K(static_cast<const block_q4_K*>(src), dst, nb);
    case GgmlType::Q5_K: return decode_q5_K(static_cast<const block_q5_K*>(src), dst, nb);
    case GgmlType::Q6_K: return decode_q6_K(static_cast<const block_q6_K*>(src), dst, nb);
    case GgmlType::Q8_K: return decode_q8_K(static_cast<const block_q8_K*>(src), dst, nb);
    case GgmlType::IQ4_NL: return decode_iq4_nl(static_cast<const block_iq4_nl*>(src), dst, nb);
    case GgmlType::IQ4_XS: return decode_iq4_xs(static_cast<const block_iq4_xs*>(src), dst, nb);
    case GgmlType::MXFP4: return decode_mxfp4(static_cast<const block_mxfp4*>(src), dst, nb);
    default: break;
  }
  throw_error("dequantize_row: no decoder for type {}", type_name(t));
}

}  // namespace tessera
