#version 460
#extension GL_GOOGLE_include_directive : require
// Router, one token per workgroup: ids and weights of its k experts (common/route.glsl, which the
// router GEMV's ROUTE variant runs too, so both give the same values).
layout(local_size_x = 64) in;
layout(binding = 0) readonly buffer L { float lg[]; };  // [n_tokens][n_expert]
layout(binding = 1) writeonly buffer I { int ids[]; };  // [n_tokens][k]
layout(binding = 2) writeonly buffer Wt { float w[]; }; // [n_tokens][k]
layout(push_constant) uniform P { uint n_expert, k; } p;
#define ROUTE_LG(i) lg[gl_WorkGroupID.x * p.n_expert + (i)]
#include "common/route.glsl"

void main() {
  const uint t = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
  route_token(p.n_expert, p.k);
  if (tid < p.k) {
    ids[t * p.k + tid] = int(route_id[tid]);
    w[t * p.k + tid] = route_w[tid];
  }
}
