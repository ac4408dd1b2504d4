#version 460
// x[t][i] += sum_j w[t][j] y[t * k + j][i]: the routed experts' down outputs, weighted, into the
// residual. Reference: the end of RefStream::moe.
layout(local_size_x = 256) in;
layout(binding = 0) buffer X { float x[]; };           // [n_tokens][n_embd]
layout(binding = 1) readonly buffer Y { float y[]; };  // [n_tokens * k][n_embd]
layout(binding = 2) readonly buffer Wt { float w[]; }; // [n_tokens][k]
layout(push_constant) uniform P { uint n, n_embd, k; } p;

void main() {
  const uint idx = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u + gl_LocalInvocationID.x;
  if (idx >= p.n) return;
  const uint t = idx / p.n_embd, i = idx % p.n_embd;
  float acc = 0.0;
  for (uint j = 0u; j < p.k; ++j) acc += w[t * p.k + j] * y[(t * p.k + j) * p.n_embd + i];
  x[idx] += acc;
}
