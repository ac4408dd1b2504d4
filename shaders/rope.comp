#version 460
// RoPE in place on [n_tokens][n_head][head_dim]: NEOX pairs (i, i + head_dim/2) or NORM (llama)
// pairs (2i, 2i + 1) turned by the angle of the token's position. cos/sin come from the host (double
// precision, frequency factors and scaling applied, per token and pair: f32 angles at positions ~1e5
// would be off by ~1e-2). Reference: RefStream::rope.
layout(local_size_x = 64) in;
layout(binding = 0) buffer X { float x[]; };
layout(binding = 1) readonly buffer CS { float cs[]; };  // [n_tokens][half][2]: cos, sin
layout(push_constant) uniform P { uint n_head, head_dim, neox; } p;

void main() {
  const uint t = gl_WorkGroupID.y, h = gl_WorkGroupID.x, half_dim = p.head_dim / 2u;
  const uint base = (t * p.n_head + h) * p.head_dim;
  for (uint i = gl_LocalInvocationID.x; i < half_dim; i += 64u) {
    const float c = cs[(t * half_dim + i) * 2u], s = cs[(t * half_dim + i) * 2u + 1u];
    const uint i0 = p.neox != 0u ? i : 2u * i, i1 = p.neox != 0u ? i + half_dim : 2u * i + 1u;
    const float x0 = x[base + i0], x1 = x[base + i1];
    x[base + i0] = x0 * c - x1 * s;
    x[base + i1] = x0 * s + x1 * c;
  }
}
