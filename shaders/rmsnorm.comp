#version 460
// y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w, one workgroup per row (x and y may be one buffer).
// Reference: RefStream::rmsnorm (engine/backend/ref_backend.cpp).
layout(local_size_x = 256) in;
layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) writeonly buffer Y { float y[]; };
layout(binding = 2) readonly buffer Wt { float w[]; };
layout(push_constant) uniform P { uint n, rows; float eps; } p;
shared float part[256];

void main() {
  const uint r = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
  if (r >= p.rows) return;  // uniform per workgroup
  const uint base = r * p.n;
  float ss = 0.0;
  for (uint i = tid; i < p.n; i += 256u) ss += x[base + i] * x[base + i];
  part[tid] = ss;
  barrier();
  for (uint s = 128u; s > 0u; s >>= 1) {
    if (tid < s) part[tid] += part[tid + s];
    barrier();
  }
  const float scale = 1.0 / sqrt(part[0] / float(p.n) + p.eps);
  for (uint i = tid; i < p.n; i += 256u) y[base + i] = x[base + i] * scale * w[i];
}
