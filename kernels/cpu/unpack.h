// Weight-row unpacking shared by the CPU GEMM kernels: any quantized row becomes unsigned 8-bit codes
// u[i] plus two floats per sub-block (32 values; 16 for Q6_K) with w[i] = a[s] * u[i] - c[s].
// Then one int8 dot-product core (u8 x s8, VNNI-shaped) serves every type.
// Included by each ISA's kernel file: everything here has internal linkage (anonymous namespace), so
// the copies compiled with different -m flags never merge.
#pragma once
#include <cstdint>
#include <cstring>
#if defined(__F16C__)
#include <immintrin.h>
#endif

#include "gguf/ggml_types.h"
#include "gguf/quant_blocks.h"

namespace tessera::ops {
namespace {

inline float unpack_h2f(uint16_t h) {
#if defined(__F16C__)
  return _cvtsh_ss(h);
#else
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  uint32_t bits;
  if (exp == 0x1f) bits = sign | 0x7f800000u | (man << 13);
  else if (exp != 0) bits = sign | ((exp + 112) << 23) | (man << 13);
  else {
    const float v = static_cast<float>(man) * 5.9604644775390625e-08f;  // man * 2^-24
    return sign ? -v : v;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
#endif
}

inline float unpack_f32_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Sub-block length of the unpacked form.
constexpr int unpack_sub(GgmlType t) { return t == GgmlType::Q6_K ? 16 : 32; }

// Q4_K / Q5_K 6-bit scales and mins of the 8 sub-blocks.
inline void k_scales(const uint8_t* s, uint8_t sc[8], uint8_t m[8]) {
  for (int j = 0; j < 4; ++j) {
    sc[j] = s[j] & 63;
    m[j] = s[j + 4] & 63;
    sc[j + 4] = (s[j + 8] & 15) | ((s[j] >> 6) << 4);
    m[j + 4] = (s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4);
  }
}

// Unpacks n values of row (type t) into u [n], a and c [n / unpack_sub(t)].
inline void unpack_row(GgmlType t, const uint8_t* row, int64_t n, uint8_t* u, float* a, float* c) {
  switch (t) {
    case GgmlType::Q4_0: {
      const auto* b = reinterpret_cast<const block_q4_0*>(row);
      for (int64_t i = 0; i < n / 32; ++i, ++b, u += 32) {
        const float d = unpack_h2f(b->d);
        a[i] = d;
        c[i] = 8.0f * d;
        for (int j = 0; j < 16; ++j) {
          u[j] = b->qs[j] & 15;
          u[j + 16] = b->qs[j] >> 4;
        }
      }
      break;
    }
    case GgmlType::Q4_1: {
      const auto* b = reinterpret_cast<const block_q4_1*>(row);
      for (int64_t i = 0; i < n / 32; ++i, ++b, u += 32) {
        a[i] = unpack_h2f(b->d);
        c[i] = -unpack_h2f(b->m);
        for (int j = 0; j < 16; ++j) {
          u[j] = b->qs[j] & 15;
          u[j + 16] = b->qs[j] >> 4;
        }
      }
      break;
    }
    case GgmlType::Q5_0: case GgmlType::Q5_1: {
      const bool has_min = t == GgmlType::Q5_1;
      const size_t bytes = has_min ? sizeof(block_q5_1) : sizeof(block_q5_0);
      for (int64_t i = 0; i < n / 32; ++i, row += bytes, u += 32) {
        const float d = unpack_h2f(reinterpret_cast<const uint16_t*>(row)[0]);
        const uint8_t* qh8 = row + (has_min ? 4 : 2);
        const uint8_t* qs = qh8 + 4;
        uint32_t qh;
        std::memcpy(&qh, qh8, 4);
        a[i] = d;
        c[i] = has_min ? -unpack_h2f(reinterpret_cast<const uint16_t*>(row)[1]) : 16.0f * d;
        for (int j = 0; j < 16; ++j) {
          u[j] = static_cast<uint8_t>((qs[j] & 15) | (((qh >> j) & 1) << 4));
          u[j + 16] = static_cast<uint8_t>((qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4));
        }
      }
      break;
    }
    case GgmlType::Q8_0: {
      const auto* b = reinterpret_cast<const block_q8_0*>(row);
      for (int64_t i = 0; i < n / 32; ++i, ++b, u += 32) {
        const float d = unpack_h2f(b->d);
        a[i] = d;
        c[i] = 128.0f * d;
        for (int j = 0; j < 32; ++j) u[j] = static_cast<uint8_t>(b->qs[j] + 128);
      }
      break;
    }
    case GgmlType::IQ4_NL: {
      const auto* b = reinterpret_cast<const block_iq4_nl*>(row);
      for (int64_t i = 0; i < n / 32; ++i, ++b, u += 32) {
        const float d = unpack_h2f(b->d);
        a[i] = d;
        c[i] = 128.0f * d;
        for (int j = 0; j < 16; ++j) {
          u[j] = static_cast<uint8_t>(kIQ4NLValues[b->qs[j] & 15] + 128);
          u[j + 16] = static_cast<uint8_t>(kIQ4NLValues[b->qs[j] >> 4] + 128);
        }
      }
      break;
    }
    case GgmlType::MXFP4: {
      const auto* b = reinterpret_cast<const block_mxfp4*>(row);
      for (int64_t i = 0; i < n / 32; ++i, ++b, u += 32) {
        const float half_scale = unpack_f32_bits(b->e < 2 ? 0x00200000u << b->e : uint32_t(b->e - 1) << 23);
        a[i] = half_scale;
        c[i] = 128.0f * half_scale;
        for (int j = 0; j < 16; ++j) {
          u[j] = static_cast<uint8_t>(kMXFP4Values[b->qs[j] & 15] + 128);
          u[j + 16] = static_cast<uint8_t>(kMXFP4Values[b->qs[j] >> 4] + 128);
        }
      }
      break;
    }
    case GgmlType::Q4_K: case GgmlType::Q5_K: {
      const bool five = t == GgmlType::Q5_K;
      const size_t bytes = five ? sizeof(block_q5_K) : sizeof(block_q4_K);
      for (int64_t i = 0; i < n / 256; ++i, row += bytes, u += 256, a += 8, c += 8) {
        const float d = unpack_h2f(reinterpret_cast<const uint16_t*>(row)[0]);
        const float dmin = unpack_h2f(reinterpret_cast<const uint16_t*>(row)[1]);
        uint8_t sc[8], m[8];
        k_scales(row + 4, sc, m);
        const uint8_t* qh = row + 16;              // Q5_K only
        const uint8_t* qs = row + (five ? 48 : 16);
        for (int s = 0; s < 8; ++s) {
          a[s] = d * sc[s];
          c[s] = dmin * m[s];
        }
        for (int ch = 0; ch < 4; ++ch) {
          const uint8_t* q = qs + 32 * ch;
          uint8_t* lo = u + 64 * ch;
          uint8_t* hi = lo + 32;
          for (int l = 0; l < 32; ++l) {
            lo[l] = q[l] & 15;
            hi[l] = q[l] >> 4;
          }
          if (five) {
            for (int l = 0; l < 32; ++l) {
              lo[l] |= static_cast<uint8_t>(((qh[l] >> (2 * ch)) & 1) << 4);
              hi[l] |= static_cast<uint8_t>(((qh[l] >> (2 * ch + 1)) & 1) << 4);
            }
          }
        }
      }
      break;
    }
    case GgmlType::Q6_K: {
      const auto* b = reinterpret_cast<const block_q6_K*>(row);
      for (int64_t i = 0; i < n / 256; ++i, ++b, u += 256, a += 16, c += 16) {
        const float d = unpack_h2f(b->d);
        for (int s = 0; s < 16; ++s) {
          a[s] = d * b->scales[s];
          c[s] = 32.0f * a[s];
        }
        for (int h = 0; h < 2; ++h) {
          const uint8_t* ql = b->ql + 64 * h;
          const uint8_t* qh = b->qh + 32 * h;
          uint8_t* o = u + 128 * h;
          for (int l = 0; l < 32; ++l) {
            o[l] = static_cast<uint8_t>((ql[l] & 15) | ((qh[l] & 3) << 4));
            o[l + 32] = static_cast<uint8_t>((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4));
            o[l + 64] = static_cast<uint8_t>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
            o[l + 96] = static_cast<uint8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
          }
        }
      }
      break;
    }
    case GgmlType::IQ4_XS: {
      const auto* b = reinterpret_cast<const block_iq4_xs*>(row);
      for (int64_t i = 0; i < n / 256; ++i, ++b, a += 8, c += 8) {
        const float d = unpack_h2f(b->d);
        for (int ib = 0; ib < 8; ++ib, u += 32) {
          const int ls = ((b->scales_l[ib / 2] >> (4 * (ib % 2))) & 15) | (((b->scales_h >> (2 * ib)) & 3) << 4);
          const float dl = d * static_cast<float>(ls - 32);
          a[ib] = dl;
          c[ib] = 128.0f * dl;
          const uint8_t* q = b->qs + 16 * ib;
          for (int j = 0; j < 16; ++j) {
            u[j] = static_cast<uint8_t>(kIQ4NLValues[q[j] & 15] + 128);
            u[j + 16] = static_cast<uint8_t>(kIQ4NLValues[q[j] >> 4] + 128);
          }
        }
      }
      break;
    }
    default: break;  // float types never reach the int8 path
  }
}

// Unpacks rows [r0, r0 + nrows) (nrows <= R) of w into an R-row interleaved tile:
//   q [n/4][R][4]   4 consecutive codes of each row side by side (one 32-bit lane per row)
//   a, c [n/sub][R] per sub-block terms; rows past nrows are zero (their outputs are not stored).
// tmp: n bytes.
template <int R>
void unpack_tile(GgmlType t, const uint8_t* w, size_t row_bytes, int64_t r0, int nrows, int64_t n, uint8_t* q,
                 float* a, float* c, uint8_t* tmp, float* ta, float* tc) {
  const int sub = unpack_sub(t);
  const int64_t n_sub = n / sub;
  for (int i = 0; i < R; ++i) {
    if (i < nrows) {
      unpack_row(t, w + static_cast<size_t>(r0 + i) * row_bytes, n, tmp, ta, tc);
    } else {
      std::memset(tmp, 0, static_cast<size_t>(n));
      for (int64_t s = 0; s < n_sub; ++s) ta[s] = tc[s] = 0.0f;
    }
    uint32_t* q32 = reinterpret_cast<uint32_t*>(q);
    for (int64_t k = 0; k < n / 4; ++k) {
      uint32_t v;
      std::memcpy(&v, tmp + 4 * k, 4);
      q32[k * R + i] = v;
    }
    for (int64_t s = 0; s < n_sub; ++s) {
      a[s * R + i] = ta[s];
      c[s * R + i] = tc[s];
    }
  }
}

}  // namespace
}  // namespace tessera::ops
