// Reference encoders of the non-linear 4-bit types: IQ4_NL and IQ4_XS (levels from the fixed
// codebook kIQ4NLValues, scale found by a weighted least-squares search), and MXFP4 (power-of-two
// block scale, nearest E2M1 value; the same rule as ggml's reference quantizer).
#include <cmath>
#include <cstring>
#include <initializer_list>

#include "gguf/codecs_internal.h"

#pragma clang fp contract(off)  // deterministic results whatever the target flags

namespace tessera::codec {
namespace {

constexpr float kTinyGroup = 1e-15f;  // a group whose largest |x| is below this encodes as zeros

// Midpoints between neighbouring codebook values, and the steps between those values.
constexpr float kMid[15] = {-115.5f, -93.5f, -74.0f, -57.0f, -42.0f, -28.5f, -16.0f, -4.5f,
                            7.0f,    19.0f,  31.5f,  45.5f,  61.0f,  79.0f,  101.0f};
constexpr float kStep[15] = {23, 21, 18, 16, 14, 13, 12, 11, 12, 12, 13, 15, 16, 20, 24};

// Index of the codebook value nearest to v (the lower one on an exact tie): the number of midpoints
// v lies above. Branch-free so loops vectorize.
inline int nearest_nl_index(float v) {
  int idx = 0;
  for (float m : kMid) idx += v > m;
  return idx;
}

// The codebook value nearest to v, summed from steps (no table gather, so it vectorizes).
inline float nearest_nl_value(float v) {
  float q = kIQ4NLValues[0];
  for (int k = 0; k < 15; ++k) q += v > kMid[k] ? kStep[k] : 0.0f;
  return q;
}

// Scale for one group of 32 values against the codebook, minimizing sum w*(scale*T[idx] - x)^2. Tries
// inverse scales mapping the largest |x| near either end of the codebook (-127 +-7 or 113 +-7), each
// rounded to the nearest codebook entry and refit in closed form, then polishes by re-rounding with
// the fitted scale. Returns 0 for a tiny group.
float fit_nl(const float* x, const float* w) {
  float amax = 0, max = 0;
  for (int i = 0; i < 32; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  if (!(amax >= kTinyGroup)) return 0;
  float best_scale = 0, best_gain = 0;  // gain = sqx^2/sqq, the error reduction of the LS scale
  auto try_candidate = [&](float iscale) {
    Lanes sqx_, sqq_;
    for (int i0 = 0; i0 < 32; i0 += 8) {
      for (int j = 0; j < 8; ++j) {
        const int i = i0 + j;
        const float q = nearest_nl_value(iscale * x[i]);
        sqx_.v[j] += w[i] * q * x[i];
        sqq_.v[j] += w[i] * q * q;
      }
    }
    const float sqx = sqx_.sum(), sqq = sqq_.sum();
    if (!(sqq > 0 && sqx * sqx > best_gain * sqq)) return false;
    best_gain = sqx * sqx / sqq;
    best_scale = sqx / sqq;
    return true;
  };
  for (float end : {-127.0f, 113.0f})  // codebook end the largest |x| maps near
    for (int k = -7; k <= 7; ++k) try_candidate((end + static_cast<float>(k)) / max);
  for (int it = 0; it < 3 && best_scale != 0; ++it)
    if (!try_candidate(1 / best_scale)) break;
  return best_scale;
}

// Squared error of 32 values coded with scale d.
float nl_error(const float* x, float d) {
  const float id = d != 0 ? 1 / d : 0;
  Lanes err;
  for (int i0 = 0; i0 < 32; i0 += 8) {
    for (int j = 0; j < 8; ++j) {
      const float e = d * nearest_nl_value(id * x[i0 + j]) - x[i0 + j];
      err.v[j] += e * e;
    }
  }
  return err.sum();
}

// Packs 32 values as codebook indices for scale d: index of x[j] low nibble, x[j+16] high nibble.
void pack_nl(const float* x, float d, uint8_t* qs) {
  const float id = d != 0 ? 1 / d : 0;
  for (int j = 0; j < 16; ++j)
    qs[j] = static_cast<uint8_t>(nearest_nl_index(id * x[j]) | nearest_nl_index(id * x[j + 16]) << 4);
}

}  // namespace

void encode_iq4_nl(const float* x, block_iq4_nl* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK4_NL) {
    y[i].d = fp16_saturating(fit_nl(x, kUnitWeights));
    pack_nl(x, fp16_to_fp32(y[i].d), y[i].qs);
  }
}

// IQ4_XS: 8 sub-blocks of 32, each with a signed 6-bit scale (stored + 32) against one fp16 d.
void encode_iq4_xs(const float* x, block_iq4_xs* y, int64_t nb) {
  float scales[8];
  for (int64_t i = 0; i < nb; ++i, x += QK_K) {
    int best = 0;
    for (int ib = 0; ib < 8; ++ib) {
      scales[ib] = fit_nl(x + 32 * ib, kUnitWeights);
      if (std::fabs(scales[ib]) > std::fabs(scales[best])) best = ib;
    }
    const float d = -scales[best] / 32;  // the largest |scale| becomes level -32
    y[i].d = fp16_saturating(d);
    const float dq = fp16_to_fp32(y[i].d);
    const float id = d != 0 ? 1 / d : 0;
    y[i].scales_h = 0;
    std::memset(y[i].scales_l, 0, sizeof(y[i].scales_l));
    for (int ib = 0; ib < 8; ++ib) {
      // the nearest 6-bit code, or a neighbour of it when that codes this sub-block better
      int l = clamp_int(nearest_int(id * scales[ib]), -32, 31);
      float best_err = nl_error(x + 32 * ib, dq * l);
      for (int c = l - 1, l0 = l; c <= l0 + 1; c += 2) {
        const float err = c >= -32 && c <= 31 ? nl_error(x + 32 * ib, dq * c) : INFINITY;
        if (err < best_err) {
          best_err = err;
          l = c;
        }
      }
      const int ls = l + 32;
      y[i].scales_l[ib / 2] |= static_cast<uint8_t>((ls & 15) << (4 * (ib % 2)));
      y[i].scales_h |= static_cast<uint16_t>((ls >> 4) << (2 * ib));
      pack_nl(x + 32 * ib, dq * l, y[i].qs + 16 * ib);
    }
  }
}

// MXFP4: shared exponent e = floor(log2(max|x|)) - 2 + 127, each value the nearest of the E2M1 grid
// (first index on ties, so 0 encodes as +0).
void encode_mxfp4(const float* x, block_mxfp4* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK_MXFP4) {
    float amax = 0;
    for (int j = 0; j < QK_MXFP4; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float e = amax > 0 ? std::floor(std::log2(amax)) - 2 + 127 : 0;
    y[i].e = static_cast<uint8_t>(std::fmin(std::fmax(e, 0.0f), 254.0f));
    const float d = e8m0_half(y[i].e);
    for (int j = 0; j < QK_MXFP4 / 2; ++j) {
      int q[2];
      for (int h = 0; h < 2; ++h) {
        const float v = x[j + 16 * h];
        int best = 0;
        float best_err = std::fabs(kMXFP4Values[0] * d - v);
        for (int k = 1; k < 16; ++k) {
          const float err = std::fabs(kMXFP4Values[k] * d - v);
          if (err < best_err) {
            best_err = err;
            best = k;
          }
        }
        q[h] = best;
      }
      y[i].qs[j] = static_cast<uint8_t>(q[0] | q[1] << 4);
    }
  }
}

}  // namespace tessera::codec
