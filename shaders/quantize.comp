#version 460
// Activations as the weight type's kernels see them (kernels/ref/act_quant.cpp): each value replaced
// by its quantized value times its scale (Q8_0: per 32, f16 scale; Q8_K: per 256, signed max), or
// rounded to f16 / bf16. The matmul shaders then use plain f32 products, so the sums agree with the
// reference's integer dot products up to f32 summation order. One workgroup per block of one row.
#if defined(ACT_Q8_K)
layout(local_size_x = 256) in;
const uint N = 256;
#else
layout(local_size_x = 32) in;
const uint N = 32;
#endif
layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) writeonly buffer XQ { float xq[]; };
layout(push_constant) uniform P { uint n_in, x_stride; } p;
shared float amax[N];
shared uint arg[N];

// round half to even, as the reference's 1.5 * 2^23 trick
float rne(float v) { return roundEven(v); }

void main() {
  const uint tid = gl_LocalInvocationID.x, r = gl_WorkGroupID.y, i = gl_WorkGroupID.x * N + tid;
#if defined(ACT_F16) || defined(ACT_BF16)
  if (i >= p.n_in) return;  // no shared memory here: rows of any length
#endif
  const float v = x[r * p.x_stride + i];
  float outv;
#if defined(ACT_F16)
  outv = unpackHalf2x16(packHalf2x16(vec2(v, 0.0))).x;
#elif defined(ACT_BF16)
  const uint b = floatBitsToUint(v);
  outv = uintBitsToFloat(((b + 0x7fffu + ((b >> 16) & 1u)) >> 16) << 16);
#else
  // the largest magnitude in the block (Q8_K: its first index, for the sign)
  amax[tid] = abs(v);
  arg[tid] = tid;
  barrier();
  for (uint s = N / 2u; s > 0u; s >>= 1) {
    if (tid < s) {
      const float a = amax[tid], b = amax[tid + s];
      if (b > a || (b == a && arg[tid + s] < arg[tid])) {
        amax[tid] = b;
        arg[tid] = arg[tid + s];
      }
    }
    barrier();
  }
  const float am = amax[0];
#if defined(ACT_Q8_0) || defined(ACT_Q8_1)  // Q8_1 quantizes as Q8_0 (the block sums are not needed here)
  const float d = unpackHalf2x16(packHalf2x16(vec2(am / 127.0, 0.0))).x;
  const float inv = am != 0.0 ? 127.0 / am : 0.0;
  outv = rne(v * inv) * d;
#else  // ACT_Q8_K
  if (am == 0.0) {
    outv = 0.0;
  } else {
    const float mx = x[r * p.x_stride + gl_WorkGroupID.x * N + arg[0]];
    const float iscale = -127.0 / mx;
    outv = min(rne(iscale * v), 127.0) * (1.0 / iscale);
  }
#endif
#endif
  xq[r * p.n_in + i] = outv;
}
