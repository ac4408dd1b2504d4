#version 460
#extension GL_GOOGLE_include_directive : require
#if defined(SUBGROUP)
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
// The routed experts, fused (decode and batches alike; one workgroup per output row and pair or token):
// GATE_UP: g[z][r] = silu(Wgate_e[r] . x) * Wup_e[r] . x for pair z = (token z / k, slot z % k) and its
//   expert e = ids[z], x = the token's h (both stacks of one type, so one activation row);
// DOWN: x[t][r] += sum_j w[t][j] * Wdown_ids[t][j][r] . g[t * k + j]: the routing weight and the
//   residual folded in (no per-pair output, no separate weighted sum).
// x and g are f32; each workgroup quantizes the rows it reads into shared memory
// (common/act_shared.glsl: no quantize dispatches). Sums in the order of matmul.comp (64 strided partial
// sums, then a tree), weighted sum over slots in order, as moe_sum.comp. Reference: RefStream::moe.
// SUBGROUP (as gemv.comp's): each dot by subgroupAdd, then the subgroups' sums in order (one barrier
// pair instead of the tree's 7 barriers).
layout(local_size_x = 64) in;
#if defined(GATE_UP)
layout(binding = 0) readonly buffer Wg { uint wg_words[]; };
layout(binding = 1) readonly buffer X { float x[]; };
layout(binding = 2) writeonly buffer Y { float y[]; };
layout(binding = 3) readonly buffer Ids { int ids[]; };
layout(binding = 4) readonly buffer Wu { uint wu_words[]; };
uint wsel = 0u;  // 0: gate, 1: up
#define W_WORD(i) (wsel == 0u ? wg_words[i] : wu_words[i])
#else
layout(binding = 0) readonly buffer W { uint w_words[]; };
layout(binding = 1) readonly buffer X { float x[]; };
layout(binding = 2) buffer Res { float res[]; };
layout(binding = 3) readonly buffer Ids { int ids[]; };
layout(binding = 4) readonly buffer Wt { float wt[]; };
#endif
layout(push_constant) uniform P { uint n_in, n_out, row_bytes, mat_stride, k; } p;
#include "common/dequant.glsl"
#include "common/act_shared.glsl"
shared float part[64];

// W_e[r] . xs over the workgroup (every invocation returns it)
float dot_row(uint e, uint r) {
  const uint tid = gl_LocalInvocationID.x, row = e * p.mat_stride + r * p.row_bytes;
  float acc = 0.0;
  for (uint i = tid; i < p.n_in; i += 64u) acc += dequant(row + (i / QK) * QBYTES, i % QK) * xs[i];
#if defined(SUBGROUP)
  acc = subgroupAdd(acc);
  if (subgroupElect()) part[gl_SubgroupID] = acc;
  barrier();
  float v = 0.0;
  for (uint g = 0u; g < gl_NumSubgroups; ++g) v += part[g];
#else
  part[tid] = acc;
  barrier();
  for (uint s = 32u; s > 0u; s >>= 1) {
    if (tid < s) part[tid] += part[tid + s];
    barrier();
  }
  const float v = part[0];
#endif
  barrier();
  return v;
}

void main() {
  const uint r = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x, z = gl_WorkGroupID.z;
  if (r >= p.n_out) return;  // uniform per workgroup
#if defined(GATE_UP)
  const uint e = uint(ids[z]);
  load_act((z / p.k) * p.n_in, p.n_in);  // the token's h
  wsel = 0u;
  const float g = dot_row(e, r);
  wsel = 1u;
  const float u = dot_row(e, r);
  if (gl_LocalInvocationID.x == 0u) y[z * p.n_out + r] = g / (1.0 + exp(-g)) * u;
#else
  float acc = 0.0;  // z: the token
  for (uint j = 0u; j < p.k; ++j) {
    const uint pr = z * p.k + j;
    load_act(pr * p.n_in, p.n_in);  // the pair's silu(g) * u
    acc += wt[pr] * dot_row(uint(ids[pr]), r);
  }
  if (gl_LocalInvocationID.x == 0u) res[z * p.n_out + r] += acc;
#endif
}
