#version 460
#extension GL_GOOGLE_include_directive : require
// Decode GEMV, y = W x for one token: kRows output rows per workgroup, which quantizes x into shared
// memory itself once for all of them (common/act_shared.glsl: no quantize dispatch). Each row sums as
// matmul.comp does (64 strided partial sums, then a tree), so both give the same values.
// NORM: x is first rmsnorm'ed with nw (the norm before q/k/v, the router or gate/up: one dispatch
//   less), the sum of squares in rmsnorm.comp's order (256 strided partial sums, then a tree);
//   workgroup 0 also writes the normed row to h for the ops after it.
// ADD: res += y as well (the residual add after the attention output or down projection).
// Reference: the `_ref` matmul kernels (kernels/ref), RefStream::rmsnorm, RefStream::add.
layout(local_size_x = 64) in;
layout(binding = 0) readonly buffer W { uint w_words[]; };
layout(binding = 1) readonly buffer X { float x[]; };
layout(binding = 2) writeonly buffer Y { float y[]; };
#if defined(NORM)
layout(binding = 3) readonly buffer NW { float nw[]; };
layout(binding = 4) writeonly buffer H { float h[]; };
shared float sq[256];
#elif defined(ADD)
layout(binding = 3) buffer Res { float res[]; };
#endif
layout(push_constant) uniform P { uint n_in, n_out, row_bytes; float eps; } p;
#include "common/dequant.glsl"
#include "common/act_shared.glsl"
const uint kRows = 4;
shared float part[64];

void main() {
  const uint wg = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x, r0 = wg * kRows, tid = gl_LocalInvocationID.x;
  if (r0 >= p.n_out) return;  // uniform per workgroup
#if defined(NORM)
  act_load(0u, p.n_in);
  for (uint t = tid; t < 256u; t += 64u) {
    float ss = 0.0;
    for (uint i = t; i < p.n_in; i += 256u) ss += xs[i] * xs[i];
    sq[t] = ss;
  }
  barrier();
  for (uint s = 128u; s > 0u; s >>= 1) {
    for (uint t = tid; t < s; t += 64u) sq[t] += sq[t + s];
    barrier();
  }
  const float scale = 1.0 / sqrt(sq[0] / float(p.n_in) + p.eps);
  for (uint i = tid; i < p.n_in; i += 64u) {
    xs[i] = xs[i] * scale * nw[i];
    if (wg == 0u) h[i] = xs[i];
  }
  barrier();
  act_finish(p.n_in);
#else
  load_act(0u, p.n_in);
#endif
  for (uint r = r0; r < min(r0 + kRows, p.n_out); ++r) {
    const uint row = r * p.row_bytes;
    float acc = 0.0;
    for (uint i = tid; i < p.n_in; i += 64u) acc += dequant(row + (i / QK) * QBYTES, i % QK) * xs[i];
    part[tid] = acc;
    barrier();
    for (uint s = 32u; s > 0u; s >>= 1) {
      if (tid < s) part[tid] += part[tid + s];
      barrier();
    }
    if (tid == 0u) {
      y[r] = part[0];
#if defined(ADD)
      res[r] += part[0];
#endif
    }
    barrier();
  }
}
