// IEEE half and bfloat16 <-> float conversions (round to nearest even). Header-only; compiles as C++
// and as HIP (no std headers beyond <stdint.h>).
#pragma once
#include <stdint.h>

#if defined(__HIPCC__) || defined(__CUDACC__)
#define TESSERA_HD __host__ __device__
#else
#define TESSERA_HD
#endif

namespace tessera {

TESSERA_HD inline uint32_t f32_bits(float f) { uint32_t u; __builtin_memcpy(&u, &f, 4); return u; }
TESSERA_HD inline float f32_from_bits(uint32_t u) { float f; __builtin_memcpy(&f, &u, 4); return f; }

TESSERA_HD inline float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t man = h & 0x3ff;
  if (exp == 0x1f) return f32_from_bits(sign | 0x7f800000u | (man << 13));  // inf / nan
  if (exp != 0) return f32_from_bits(sign | ((exp + 112) << 23) | (man << 13));
  if (man == 0) return f32_from_bits(sign);
  // subnormal: value = man * 2^-24
  float v = (float)man * f32_from_bits(0x33800000u);  // 2^-24
  return sign ? -v : v;
}

TESSERA_HD inline uint16_t fp32_to_fp16(float f) {
  const uint32_t x = f32_bits(f);
  const uint32_t sign = (x >> 16) & 0x8000;
  const uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0));  // inf/nan
  if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);  // rounds to >= 65520: overflow to inf
  if (ax < 0x38800000u) {
    // result is subnormal (or zero): add 0.5 so the FPU's round-to-nearest-even does the work
    float v = f32_from_bits(ax) + 0.5f;
    return (uint16_t)(sign | (f32_bits(v) - 0x3f000000u));
  }
  const uint32_t odd = (ax >> 13) & 1;
  const uint32_t r = ax + 0xc8000fffu + odd;  // rebias exponent (-112 << 23) and round to nearest even
  return (uint16_t)(sign | (r >> 13));
}

TESSERA_HD inline float bf16_to_fp32(uint16_t b) { return f32_from_bits((uint32_t)b << 16); }

TESSERA_HD inline uint16_t fp32_to_bf16(float f) {
  uint32_t x = f32_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 64);  // quiet nan
  return (uint16_t)((x + (0x7fff + ((x >> 16) & 1))) >> 16);
}

}  // namespace tessera
