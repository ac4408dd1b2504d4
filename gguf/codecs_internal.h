// Private helpers shared by the reference encoders (codecs_encode*.cpp): per-family row encoders and
// small numeric utilities. Not part of the public codec interface (gguf/codecs.h).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/error.h"
#include "gguf/ggml_types.h"
#include "gguf/half.h"
#include "gguf/quant_blocks.h"

namespace tessera::codec {

// Round to nearest, ties to even, via the 1.5*2^23 trick (no libm call, no UB for any input). The
// argument is clamped to +-2^21 first so huge or non-finite values still give an in-range int.
inline int nearest_int(float v) {
  v = std::fmin(std::fmax(v, -2097152.0f), 2097152.0f);  // NaN -> -2^21 (fmax drops NaN)
  const float t = v + 12582912.0f;
  return static_cast<int>(f32_bits(t) & 0x7fffff) - 0x400000;
}

inline int clamp_int(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Clamps to [lo, hi] with plain compares (vectorizes; NaN becomes lo).
inline float clampf(float v, float lo, float hi) {
  v = v > lo ? v : lo;
  return v < hi ? v : hi;
}

// Rounds to the nearest integer, ties to even, as a float; exact for |v| < 2^22 (callers clamp first).
inline float round_even(float v) { return (v + 12582912.0f) - 12582912.0f; }

// fp16 of a scale, saturating at +-65504 instead of overflowing to inf (finite input never decodes to
// inf; only the searching encoders use it, the byte-identical ones keep ggml's plain conversion).
inline uint16_t fp16_saturating(float v) { return fp32_to_fp16(std::fmin(std::fmax(v, -65504.0f), 65504.0f)); }

// Without an importance matrix every value counts the same: the fits minimize plain squared error,
// which is what NMSE measures. (ggml's heuristic weights, x^2 or rms+|x|, measured 1-20% worse on the
// golden input.) The fit functions still take weights so an importance matrix can be plugged in.
inline constexpr float kUnitWeights[32] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                           1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};

// A sum accumulated in 8 independent lanes (groups are multiples of 8 long) so loops vectorize
// without reassociating floating-point sums.
struct Lanes {
  float v[8] = {};
  float sum() const { return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7])); }
};

// Half of the MXFP4 E8M0 scale 2^(e-127), built from its bits (exact, also for e = 0 and 1).
inline float e8m0_half(uint8_t e) { return f32_from_bits(e < 2 ? 0x00200000u << e : uint32_t(e - 1) << 23); }

// The types with a reference row codec, the same set both ways (has_decoder and has_encoder).
inline bool has_row_codec(GgmlType t) {
  switch (t) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16:
    case GgmlType::Q4_0: case GgmlType::Q4_1: case GgmlType::Q5_0: case GgmlType::Q5_1:
    case GgmlType::Q8_0: case GgmlType::Q2_K: case GgmlType::Q3_K: case GgmlType::Q4_K:
    case GgmlType::Q5_K: case GgmlType::Q6_K: case GgmlType::Q8_K: case GgmlType::IQ4_NL:
    case GgmlType::IQ4_XS: case GgmlType::MXFP4:
      return true;
    default:
      return false;
  }
}

// Blocks in a row of n values of type t; throws (naming the caller fn) when n is not whole blocks.
inline int64_t row_blocks(const char* fn, GgmlType t, int64_t n) {
  const int64_t bs = type_traits(t).block_size;
  if (n < 0 || n % bs != 0) throw_error("{}: {} values is not a multiple of the {} block size {}", fn, n, type_name(t), bs);
  return n / bs;
}

// Row encoders; nb = number of blocks. Each writes nb blocks to y.
void encode_q2_K(const float* x, block_q2_K* y, int64_t nb);
void encode_q3_K(const float* x, block_q3_K* y, int64_t nb);
void encode_q4_K(const float* x, block_q4_K* y, int64_t nb);
void encode_q5_K(const float* x, block_q5_K* y, int64_t nb);
void encode_q6_K(const float* x, block_q6_K* y, int64_t nb);
void encode_iq4_nl(const float* x, block_iq4_nl* y, int64_t nb);
void encode_iq4_xs(const float* x, block_iq4_xs* y, int64_t nb);
void encode_mxfp4(const float* x, block_mxfp4* y, int64_t nb);

}  // namespace tessera::codec
