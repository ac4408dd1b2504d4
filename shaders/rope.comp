#version 460
// NEOX RoPE in place on [n_tokens][n_head][head_dim]: pairs (i, i + head_dim/2) turned by the angle
// of the token's position. cos/sin come from the host (double precision, per token and pair: f32
// angles at positions ~1e5 would be off by ~1e-2). Reference: RefStream::rope.
layout(local_size_x = 64) in;
layout(binding = 0) buffer X { float x[]; };
layout(binding = 1) readonly buffer CS { float cs[]; };  // [n_tokens][half][2]: cos, sin
layout(push_constant) uniform P { uint n_head, head_dim; } p;

void main() {
  const uint t = gl_WorkGroupID.y, h = gl_WorkGroupID.x, half_dim = p.head_dim / 2u;
  const uint base = (t * p.n_head + h) * p.head_dim;
  for (uint i = gl_LocalInvocationID.x; i < half_dim; i += 64u) {
    const float c = cs[(t * half_dim + i) * 2u], s = cs[(t * half_dim + i) * 2u + 1u];
    const float x0 = x[base + i], x1 = x[base + i + half_dim];
    x[base + i] = x0 * c - x1 * s;
    x[base + i + half_dim] = x0 * s + x1 * c;
  }
}
