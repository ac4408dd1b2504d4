#version 460
#extension GL_GOOGLE_include_directive : require
// out[i] = x[out_rows[i]] over rows of n values. Reference: RefStream::gather_out_rows.
layout(local_size_x = 256) in;
layout(binding = 0) readonly buffer X { float x[]; };
#define BATCH_BINDING 1
#include "common/batch.glsl"
layout(binding = 2) writeonly buffer O { float o[]; };
layout(push_constant) uniform P { uint n, off_out; } p;

void main() {
  const uint i = gl_WorkGroupID.y;
  const uint src = batch[p.off_out + i];
  for (uint k = gl_LocalInvocationID.x; k < p.n; k += 256u) o[i * p.n + k] = x[src * p.n + k];
}
