#version 460
// RoPE in place on [n_tokens][n_head][head_dim]: NEOX pairs (i, i + head_dim/2) or NORM (llama)
// pairs (2i, 2i + 1) turned by the angle of the token's position. cos/sin come from the host (double
// precision, frequency factors and scaling applied, per token and pair: f32 angles at positions ~1e5
// would be off by ~1e-2). Reference: RefStream::rope.
// QK_NORM: each head is first rmsnorm'ed with w (qwen3's QK-norm, one dispatch less per q and k), the
// sum of squares as rmsnorm.comp makes it (256 strided partial sums, then a tree), head_dim <= 256.
#if defined(QK_NORM)
layout(local_size_x = 256) in;
layout(binding = 2) readonly buffer Wt { float w[]; };
shared float part[256];
shared float xn[256];
#define LOAD(i) xn[i]
#else
layout(local_size_x = 64) in;
#define LOAD(i) x[base + (i)]
#endif
layout(binding = 0) buffer X { float x[]; };
layout(binding = 1) readonly buffer CS { float cs[]; };  // [n_tokens][half][2]: cos, sin
layout(push_constant) uniform P { uint n_head, head_dim, neox; float eps; } p;

void main() {
  const uint t = gl_WorkGroupID.y, h = gl_WorkGroupID.x, half_dim = p.head_dim / 2u, tid = gl_LocalInvocationID.x;
  const uint base = (t * p.n_head + h) * p.head_dim;
#if defined(QK_NORM)
  float ss = 0.0;
  for (uint i = tid; i < p.head_dim; i += 256u) ss += x[base + i] * x[base + i];
  part[tid] = ss;
  barrier();
  for (uint s = 128u; s > 0u; s >>= 1) {
    if (tid < s) part[tid] += part[tid + s];
    barrier();
  }
  const float scale = 1.0 / sqrt(part[0] / float(p.head_dim) + p.eps);
  if (tid < p.head_dim) xn[tid] = x[base + tid] * scale * w[tid];
  barrier();
#endif
  for (uint i = tid; i < half_dim; i += gl_WorkGroupSize.x) {
    const float c = cs[(t * half_dim + i) * 2u], s = cs[(t * half_dim + i) * 2u + 1u];
    const uint i0 = p.neox != 0u ? i : 2u * i, i1 = p.neox != 0u ? i + half_dim : 2u * i + 1u;
    const float x0 = LOAD(i0), x1 = LOAD(i1);
    x[base + i0] = x0 * c - x1 * s;
    x[base + i1] = x0 * s + x1 * c;
  }
}
