#version 460
#extension GL_GOOGLE_include_directive : require
// y[t][r] = sum_i W[r][i] x[t][i] for `rows` tokens: one workgroup per output row, the invocations
// split the row and dequantize each weight once for up to 8 tokens at a time. A simple, correct
// decode GEMV per weight type (the fast subgroup / integer-dot / coopmat versions come next).
// x is f32 as quantize.comp leaves it. Reference: the `_ref` matmul kernels (kernels/ref).
// MOE: workgroup z is one (token, slot) pair z of the routed experts: the matrix of expert ids[z]
// of the stack, x row z / x_div (gate/up: the token's h; down: the pair's own row), y row z.
layout(local_size_x = 64) in;
layout(binding = 0) readonly buffer W { uint w_words[]; };
layout(binding = 1) readonly buffer X { float x[]; };
layout(binding = 2) writeonly buffer Y { float y[]; };
#if defined(MOE)
layout(binding = 3) readonly buffer Ids { int ids[]; };
#endif
layout(push_constant) uniform P { uint n_in, n_out, rows, row_bytes, w_off, x_stride, y_stride, mat_stride, x_div; } p;
#include "common/dequant.glsl"
const uint kT = 8;
shared float part[kT][64];

void main() {
  const uint r = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
  if (r >= p.n_out) return;  // uniform per workgroup
#if defined(MOE)
  const uint row = uint(ids[gl_WorkGroupID.z]) * p.mat_stride + r * p.row_bytes;
  const uint t_begin = gl_WorkGroupID.z, t_end = t_begin + 1u;
#else
  const uint row = p.w_off + r * p.row_bytes;
  const uint t_begin = 0u, t_end = p.rows;
#endif
  for (uint t0 = t_begin; t0 < t_end; t0 += kT) {
    const uint nt = min(kT, t_end - t0);
    float acc[kT] = float[kT](0, 0, 0, 0, 0, 0, 0, 0);
    for (uint i = tid; i < p.n_in; i += 64u) {
      const float w = dequant(row + (i / QK) * QBYTES, i % QK);
      for (uint u = 0u; u < nt; ++u) acc[u] += w * x[((t0 + u) / p.x_div) * p.x_stride + i];
    }
    for (uint u = 0u; u < kT; ++u) part[u][tid] = acc[u];
    barrier();
    for (uint s = 32u; s > 0u; s >>= 1) {
      if (tid < s)
        for (uint u = 0u; u < kT; ++u) part[u][tid] += part[u][tid + s];
      barrier();
    }
    if (tid < nt) y[(t0 + tid) * p.y_stride + r] = part[tid][0];
    barrier();
  }
}
