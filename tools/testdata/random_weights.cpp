// Random weight rows and activations for tests and benchmarks (see random_weights.h).
#include "tools/testdata/random_weights.h"

#include <cstring>
#include <random>

#include "gguf/half.h"
#include "gguf/quant_blocks.h"

namespace tessera::ops {

namespace {

void put_half(uint8_t* p, float v) {
  const uint16_t h = fp32_to_fp16(v);
  std::memcpy(p, &h, 2);
}

}  // namespace

std::vector<uint8_t> random_weight_rows(GgmlType t, int64_t n_out, int64_t n_in, uint64_t seed) {
  const size_t rb = row_bytes(t, n_in);
  std::vector<uint8_t> out(rb * static_cast<size_t>(n_out));
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  std::uniform_real_distribution<float> scale(0.002f, 0.02f);
  if (t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16) {
    const size_t n = static_cast<size_t>(n_out * n_in);
    for (size_t i = 0; i < n; ++i) {
      const float v = uni(rng) * 0.1f;
      if (t == GgmlType::F32) std::memcpy(out.data() + 4 * i, &v, 4);
      else {
        const uint16_t h = t == GgmlType::F16 ? fp32_to_fp16(v) : fp32_to_bf16(v);
        std::memcpy(out.data() + 2 * i, &h, 2);
      }
    }
    return out;
  }
  for (uint8_t& b : out) b = static_cast<uint8_t>(rng());
  const TypeTraits& tr = type_traits(t);
  const size_t nblocks = out.size() / tr.type_size;
  for (size_t b = 0; b < nblocks; ++b) {
    uint8_t* p = out.data() + b * tr.type_size;
    switch (t) {
      case GgmlType::Q4_0: case GgmlType::Q5_0: case GgmlType::Q8_0: case GgmlType::IQ4_NL:
        put_half(p, scale(rng));
        break;
      case GgmlType::Q4_1: case GgmlType::Q5_1:
        put_half(p, scale(rng));
        put_half(p + 2, -8.0f * scale(rng));
        break;
      case GgmlType::Q4_K: case GgmlType::Q5_K:
        put_half(p, scale(rng) * 0.1f);
        put_half(p + 2, scale(rng) * 0.1f);
        break;
      case GgmlType::Q6_K:
        put_half(p + offsetof(block_q6_K, d), scale(rng) * 0.1f);
        break;
      case GgmlType::IQ4_XS:
        put_half(p, scale(rng) * 0.05f);
        break;
      case GgmlType::MXFP4:
        p[0] = static_cast<uint8_t>(118 + rng() % 8);
        break;
      default: break;
    }
  }
  return out;
}

std::vector<float> random_activations(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = uni(rng);
  for (int64_t i = 0; i < n / 97; ++i) x[rng() % n] *= 8.0f;  // a few outliers
  return x;
}

}  // namespace tessera::ops
