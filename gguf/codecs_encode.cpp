// Reference encoders (quantize_row) of the float types, the simple 32-value block types (byte-identical
// with ggml's reference quantizers) and Q8_K; plus the dispatcher. K-quants live in
// codecs_encode_k.cpp, IQ4_NL / IQ4_XS / MXFP4 in codecs_encode_iq.cpp.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "gguf/codecs.h"
#include "gguf/codecs_internal.h"

// Byte-identity with ggml needs each multiply and add rounded separately.
#pragma clang fp contract(off)

namespace tessera {
namespace {

using codec::nearest_int;

// C's (int8_t) conversion (truncation toward zero) for values already in range; out-of-range or NaN
// inputs (only possible from non-finite data) are clamped instead of being undefined behaviour.
inline int trunc_to_int8(float v) {
  v = std::fmin(std::fmax(v, -128.0f), 127.0f);
  return static_cast<int>(v);
}

void encode_f32(const float* x, float* y, int64_t n) { std::memcpy(y, x, static_cast<size_t>(n) * 4); }

void encode_f16(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

void encode_bf16(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_bf16(x[i]);
}

// The value of largest magnitude, sign kept (first one on ties).
inline float signed_absmax(const float* x, int n) {
  float amax = 0, max = 0;
  for (int j = 0; j < n; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

// d = amax/127, q = round(x/d) half away from zero.
void encode_q8_0(const float* x, block_q8_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK8_0) {
    float amax = 0;
    for (int j = 0; j < QK8_0; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < QK8_0; ++j) y[i].qs[j] = static_cast<int8_t>(std::fmin(std::fmax(std::round(x[j] * id), -127.0f), 127.0f));
  }
}

// d = max/-8 (max = signed value of largest magnitude), q = min(15, trunc(x/d + 8.5)).
void encode_q4_0(const float* x, block_q4_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK4_0) {
    const float d = signed_absmax(x, QK4_0) / -8;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
      const int q0 = std::min(15, trunc_to_int8(x[j] * id + 8.5f));
      const int q1 = std::min(15, trunc_to_int8(x[j + 16] * id + 8.5f));
      y[i].qs[j] = static_cast<uint8_t>(q0 | q1 << 4);
    }
  }
}

// d = (max-min)/15, m = min, q = min(15, trunc((x-min)/d + 0.5)).
void encode_q4_1(const float* x, block_q4_1* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK4_1) {
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int j = 0; j < QK4_1; ++j) {
      if (x[j] < lo) lo = x[j];
      if (x[j] > hi) hi = x[j];
    }
    const float d = (hi - lo) / 15;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(lo);
    for (int j = 0; j < QK4_1 / 2; ++j) {
      const int q0 = std::min(15, trunc_to_int8((x[j] - lo) * id + 0.5f));
      const int q1 = std::min(15, trunc_to_int8((x[j + 16] - lo) * id + 0.5f));
      y[i].qs[j] = static_cast<uint8_t>(q0 | q1 << 4);
    }
  }
}

inline void store_qh(uint8_t* dst, uint32_t qh) {
  for (int k = 0; k < 4; ++k) dst[k] = static_cast<uint8_t>(qh >> (8 * k));
}

// As Q4_0 with 5 bits: d = max/-16, q = min(31, trunc(x/d + 16.5)); bit 4 of value j -> bit j of qh.
void encode_q5_0(const float* x, block_q5_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK5_0) {
    const float d = signed_absmax(x, QK5_0) / -16;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < QK5_0 / 2; ++j) {
      const int q0 = std::min(31, trunc_to_int8(x[j] * id + 16.5f));
      const int q1 = std::min(31, trunc_to_int8(x[j + 16] * id + 16.5f));
      y[i].qs[j] = static_cast<uint8_t>((q0 & 15) | (q1 & 15) << 4);
      qh |= uint32_t(q0 >> 4 & 1) << j;
      qh |= uint32_t(q1 >> 4 & 1) << (j + 16);
    }
    store_qh(y[i].qh, qh);
  }
}

// As Q4_1 with 5 bits: d = (max-min)/31.
void encode_q5_1(const float* x, block_q5_1* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK5_1) {
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int j = 0; j < QK5_1; ++j) {
      if (x[j] < lo) lo = x[j];
      if (x[j] > hi) hi = x[j];
    }
    const float d = (hi - lo) / 31;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(lo);
    uint32_t qh = 0;
    for (int j = 0; j < QK5_1 / 2; ++j) {
      const int q0 = std::min(31, trunc_to_int8((x[j] - lo) * id + 0.5f));
      const int q1 = std::min(31, trunc_to_int8((x[j + 16] - lo) * id + 0.5f));
      y[i].qs[j] = static_cast<uint8_t>((q0 & 15) | (q1 & 15) << 4);
      qh |= uint32_t(q0 >> 4 & 1) << j;
      qh |= uint32_t(q1 >> 4 & 1) << (j + 16);
    }
    store_qh(y[i].qh, qh);
  }
}

// Q8_K (activations): d = max/-127 with max the signed value of largest magnitude, q = round(x/d)
// (ties to even), bsums = sums of each 16 quants.
void encode_q8_K(const float* x, block_q8_K* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK_K) {
    const float max = signed_absmax(x, QK_K);
    if (max == 0) {
      std::memset(&y[i], 0, sizeof(block_q8_K));
      continue;
    }
    const float iscale = -127.0f / max;
    for (int j = 0; j < QK_K; ++j) y[i].qs[j] = static_cast<int8_t>(codec::clamp_int(nearest_int(iscale * x[j]), -127, 127));
    for (int g = 0; g < QK_K / 16; ++g) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += y[i].qs[16 * g + j];
      y[i].bsums[g] = static_cast<int16_t>(sum);
    }
    y[i].d = 1 / iscale;
  }
}

}  // namespace

bool has_encoder(GgmlType t) { return codec::has_row_codec(t); }

size_t quantize_row(GgmlType t, const float* src, void* dst, int64_t n) {
  if (!has_encoder(t)) throw_error("quantize_row: no encoder for type {}", type_name(t));
  const int64_t nb = codec::row_blocks("quantize_row", t, n);
  switch (t) {
    case GgmlType::F32: encode_f32(src, static_cast<float*>(dst), n); break;
    case GgmlType::F16: encode_f16(src, static_cast<uint16_t*>(dst), n); break;
    case GgmlType::BF16: encode_bf16(src, static_cast<uint16_t*>(dst), n); break;
    case GgmlType::Q4_0: encode_q4_0(src, static_cast<block_q4_0*>(dst), nb); break;
    case GgmlType::Q4_1: encode_q4_1(src, static_cast<block_q4_1*>(dst), nb); break;
    case GgmlType::Q5_0: encode_q5_0(src, static_cast<block_q5_0*>(dst), nb); break;
    case GgmlType::Q5_1: encode_q5_1(src, static_cast<block_q5_1*>(dst), nb); break;
    case GgmlType::Q8_0: encode_q8_0(src, static_cast<block_q8_0*>(dst), nb); break;
    case GgmlType::Q8_K: encode_q8_K(src, static_cast<block_q8_K*>(dst), nb); break;
    case GgmlType::Q2_K: codec::encode_q2_K(src, static_cast<block_q2_K*>(dst), nb); break;
    case GgmlType::Q3_K: codec::encode_q3_K(src, static_cast<block_q3_K*>(dst), nb); break;
    case GgmlType::Q4_K: codec::encode_q4_K(src, static_cast<block_q4_K*>(dst), nb); break;
    case GgmlType::Q5_K: codec::encode_q5_K(src, static_cast<block_q5_K*>(dst), nb); break;
    case GgmlType::Q6_K: codec::encode_q6_K(src, static_cast<block_q6_K*>(dst), nb); break;
    case GgmlType::IQ4_NL: codec::encode_iq4_nl(src, static_cast<block_iq4_nl*>(dst), nb); break;
    case GgmlType::IQ4_XS: codec::encode_iq4_xs(src, static_cast<block_iq4_xs*>(dst), nb); break;
    case GgmlType::MXFP4: codec::encode_mxfp4(src, static_cast<block_mxfp4*>(dst), nb); break;
    default: throw_error("quantize_row: no encoder for type {}", type_name(t));
  }
  return row_bytes(t, n);
}

}  // namespace tessera
