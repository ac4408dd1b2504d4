#version 460
// The batch MoE path's last step (vk_stream.cpp, moe on tiles): x[t][i] += sum_j w[t][j] d[t k + j][i],
// each token's k expert outputs (rows of d, one per (token, slot) pair) weighted by its routing weights
// and added to the residual. One invocation per value; tokens are workgroup y.
layout(local_size_x = 64) in;
layout(binding = 0) readonly buffer D { float d[]; };
layout(binding = 1) readonly buffer Wt { float w[]; };
layout(binding = 2) buffer X { float x[]; };
layout(push_constant) uniform P { uint n_embd, k; } p;

void main() {
  const uint i = gl_GlobalInvocationID.x, t = gl_WorkGroupID.y;
  if (i >= p.n_embd) return;
  float acc = 0.0;
  for (uint j = 0u; j < p.k; ++j) acc += w[t * p.k + j] * d[(t * p.k + j) * p.n_embd + i];
  x[t * p.n_embd + i] += acc;
}
