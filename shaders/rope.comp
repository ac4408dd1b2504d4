#version 460
#extension GL_GOOGLE_include_directive : require
// RoPE in place on [n_tokens][n_head][head_dim]: NEOX pairs (i, i + head_dim/2) or NORM (llama)
// pairs (2i, 2i + 1) turned by the angle of the token's position. cos/sin come from the host (double
// precision, frequency factors and scaling applied, per token and pair: f32 angles at positions ~1e5
// would be off by ~1e-2). Reference: RefStream::rope.
// QK_NORM: each head is first rmsnorm'ed with w (qwen3's QK-norm, one dispatch less per q and k), the
// sum of squares as rmsnorm.comp makes it (256 strided partial sums, then a tree), head_dim <= 256.
// STORE: these are k heads; the rotated k and the same heads of v also go into the f16 paged KV as
// kv_store.comp writes them (one dispatch less).
// BOTH (with STORE): the q heads too, in the same dispatch: workgroups h < n_head_q turn q's heads
//   (xq, normed with wq under QK_NORM), the others k's as above (one dispatch less again).
#if defined(QK_NORM)
layout(local_size_x = 256) in;
layout(binding = 2) readonly buffer Wt { float w[]; };
shared float part[256];
shared float xn[256];
#define LOAD(i) xn[i]
#else
layout(local_size_x = 64) in;
#define LOAD(i) XR(base + (i))
#endif
layout(binding = 0) buffer X { float x[]; };
layout(binding = 1) readonly buffer CS { float cs[]; };  // [n_tokens][half][2]: cos, sin
layout(push_constant) uniform P { uint n_head, head_dim, neox; float eps; uint n_blocks, layer, off_pos, off_tbl, n_head_q; } p;
#if defined(BOTH)
layout(binding = 7) buffer XQ { float xq[]; };
layout(binding = 8) readonly buffer WQ { float wq[]; };
bool on_q = false;  // this workgroup turns a q head
#define XR(i) (on_q ? xq[i] : x[i])
#define XW(i, val) \
  if (on_q) xq[i] = (val); \
  else x[i] = (val)
#define WR(i) (on_q ? wq[i] : w[i])
#else
#define XR(i) x[i]
#define XW(i, val) x[i] = (val)
#define WR(i) w[i]
#endif
#if defined(STORE)
layout(binding = 3) readonly buffer V { vec2 v[]; };
#define BATCH_BINDING 4
#include "common/batch.glsl"
layout(binding = 5) buffer KC { uint kc[]; };  // f16 pairs
layout(binding = 6) buffer VC { uint vc[]; };
shared float xr[256];
#endif

void main() {
  const uint t = gl_WorkGroupID.y, half_dim = p.head_dim / 2u, tid = gl_LocalInvocationID.x;
#if defined(BOTH)
  on_q = gl_WorkGroupID.x < p.n_head_q;
  const uint h = on_q ? gl_WorkGroupID.x : gl_WorkGroupID.x - p.n_head_q, n_head = on_q ? p.n_head_q : p.n_head;
#else
  const uint h = gl_WorkGroupID.x, n_head = p.n_head;
#endif
  const uint base = (t * n_head + h) * p.head_dim;
#if defined(QK_NORM)
  float ss = 0.0;
  for (uint i = tid; i < p.head_dim; i += 256u) ss += XR(base + i) * XR(base + i);
  part[tid] = ss;
  barrier();
  for (uint s = 128u; s > 0u; s >>= 1) {
    if (tid < s) part[tid] += part[tid + s];
    barrier();
  }
  const float scale = 1.0 / sqrt(part[0] / float(p.head_dim) + p.eps);
  if (tid < p.head_dim) xn[tid] = XR(base + tid) * scale * WR(tid);
  barrier();
#endif
  for (uint i = tid; i < half_dim; i += gl_WorkGroupSize.x) {
    const float c = cs[(t * half_dim + i) * 2u], s = cs[(t * half_dim + i) * 2u + 1u];
    const uint i0 = p.neox != 0u ? i : 2u * i, i1 = p.neox != 0u ? i + half_dim : 2u * i + 1u;
    const float x0 = LOAD(i0), x1 = LOAD(i1);
    XW(base + i0, x0 * c - x1 * s);
    XW(base + i1, x0 * s + x1 * c);
#if defined(STORE)
    xr[i0] = x0 * c - x1 * s;
    xr[i1] = x0 * s + x1 * c;
#endif
  }
#if defined(STORE)
  barrier();
#if defined(BOTH)
  if (on_q) return;  // uniform per workgroup
#endif
  const uint pos = batch[p.off_pos + t], blk = batch[batch[p.off_tbl + t] + pos / 32u];
  const uint pairs = p.n_head * half_dim, dst = ((p.layer * p.n_blocks + blk) * 32u + pos % 32u) * pairs + h * half_dim;
  for (uint j = tid; j < half_dim; j += gl_WorkGroupSize.x) {
    kc[dst + j] = packHalf2x16(vec2(xr[2u * j], xr[2u * j + 1u]));
    vc[dst + j] = packHalf2x16(v[t * pairs + h * half_dim + j]);
  }
#endif
}
