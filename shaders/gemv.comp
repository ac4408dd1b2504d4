#version 460
#extension GL_GOOGLE_include_directive : require
#if defined(SUBGROUP)
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
// Decode GEMV, y = W x for one token: kRows output rows per workgroup, which quantizes x into shared
// memory itself once for all of them (common/act_shared.glsl: no quantize dispatch). Each row sums as
// matmul.comp does (64 strided partial sums, then a tree), so both give the same values.
// NORM: x is first rmsnorm'ed with nw (the norm before q/k/v, the router or gate/up: one dispatch
//   less), the sum of squares in rmsnorm.comp's order (256 strided partial sums, then a tree);
//   workgroup 0 also writes the normed row to h for the ops after it.
// ADD: res += y as well (the residual add after the attention output or down projection).
// QKV (with NORM): the q, k and v projections of the normed row in one dispatch, the workgroups over
//   q's rows first, then k's, then v's; q and k of one type, v of that type or of V_<type> with the
//   same activation type (Q4_K_M files keep some v in Q6_K).
// SUBGROUP (devices with subgroup arithmetic, subgroups of >= 4): the kRows row sums each reduced by
//   subgroupAdd, then over the subgroups in order, with one barrier for all rows (the tree takes 7 per
//   row); the values differ from matmul.comp's in the last bits (another summation order).
// ROUTE (with NORM): y are the router's logits; the last workgroup to finish (a counter that it resets)
//   picks the token's experts from them (common/route.glsl, as route.comp does): one dispatch less.
// Reference: the `_ref` matmul kernels (kernels/ref), RefStream::rmsnorm, RefStream::add.
layout(local_size_x = 64) in;
layout(binding = 0) readonly buffer W { uint w_words[]; };
layout(binding = 1) readonly buffer X { float x[]; };
#if defined(ROUTE)
layout(binding = 2) coherent buffer Y { float y[]; };  // read back by the last workgroup
layout(binding = 5) writeonly buffer Ids { int ids[]; };
layout(binding = 6) writeonly buffer Wt { float wt[]; };
layout(binding = 7) coherent buffer Count { uint done; };  // workgroups finished (0 between dispatches)
#define ROUTE_LG(i) y[i]
#include "common/route.glsl"
shared bool last;
#else
layout(binding = 2) writeonly buffer Y { float y[]; };
#endif
#if defined(NORM)
layout(binding = 3) readonly buffer NW { float nw[]; };
layout(binding = 4) writeonly buffer H { float h[]; };
shared float sq[256];
#elif defined(ADD)
layout(binding = 3) buffer Res { float res[]; };
#endif
#if defined(QKV)
layout(binding = 5) readonly buffer Wk { uint wk_words[]; };
layout(binding = 6) writeonly buffer Yk { float yk[]; };
layout(binding = 7) readonly buffer Wv { uint wv_words[]; };
layout(binding = 8) writeonly buffer Yv { float yv[]; };
uint wsel = 0u;  // the matrix of this workgroup: 0 q, 1 k, 2 v
#define W_WORD(i) (wsel == 0u ? w_words[i] : wsel == 1u ? wk_words[i] : wv_words[i])
#endif
#if defined(ROUTE)
layout(push_constant) uniform P { uint n_in, n_out, row_bytes; float eps; uint k; } p;
#else
layout(push_constant) uniform P { uint n_in, n_out, row_bytes; float eps; uint n_out_k, row_bytes_k, n_out_v, row_bytes_v; } p;
#endif
#include "common/dequant.glsl"
#if defined(V_Q4_K) || defined(V_Q5_K) || defined(V_Q6_K) || defined(V_Q8_0)
#define V_OTHER  // v's dequant under other names
#undef TYPE_Q4_0
#undef TYPE_Q4_1
#undef TYPE_Q5_0
#undef TYPE_Q5_1
#undef TYPE_IQ4_NL
#undef TYPE_Q8_0
#undef TYPE_Q4_K
#undef TYPE_Q5_K
#undef TYPE_Q6_K
#if defined(V_Q4_K)
#define TYPE_Q4_K
#elif defined(V_Q5_K)
#define TYPE_Q5_K
#elif defined(V_Q6_K)
#define TYPE_Q6_K
#else
#define TYPE_Q8_0
#endif
#define dequant dequant_v
#define QK QK_V
#define QBYTES QBYTES_V
#define scale_min_k4 scale_min_k4_v
#define kIq4nl kIq4nl_v
#include "common/dequant.glsl"
#undef dequant
#undef QK
#undef QBYTES
#endif
#include "common/act_shared.glsl"
const uint kRows = 4;
shared float part[64];

// output row r of the matrix this workgroup works on
void put(uint r, float v) {
#if defined(QKV)
  if (wsel == 0u) y[r] = v;
  else if (wsel == 1u) yk[r] = v;
  else yv[r] = v;
#else
  y[r] = v;
#endif
#if defined(ADD)
  res[r] += v;
#endif
}

void main() {
  const uint wg = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x, tid = gl_LocalInvocationID.x;
  uint r0 = wg * kRows, n_out = p.n_out, row_bytes = p.row_bytes;
#if defined(QKV)
  const uint gq = (p.n_out + kRows - 1u) / kRows, gk = (p.n_out_k + kRows - 1u) / kRows;
  if (wg >= gq) {
    wsel = wg < gq + gk ? 1u : 2u;
    r0 = (wsel == 1u ? wg - gq : wg - gq - gk) * kRows;
    n_out = wsel == 1u ? p.n_out_k : p.n_out_v;
    row_bytes = wsel == 1u ? p.row_bytes_k : p.row_bytes_v;
  }
#endif
  if (r0 >= n_out) return;  // uniform per workgroup
#if defined(NORM)
  act_load(0u, p.n_in);
  for (uint t = tid; t < 256u; t += 64u) {
    float ss = 0.0;
    for (uint i = t; i < p.n_in; i += 256u) ss += xs[i] * xs[i];
    sq[t] = ss;
  }
  barrier();
  for (uint s = 128u; s > 0u; s >>= 1) {
    for (uint t = tid; t < s; t += 64u) sq[t] += sq[t + s];
    barrier();
  }
  const float scale = 1.0 / sqrt(sq[0] / float(p.n_in) + p.eps);
  for (uint i = tid; i < p.n_in; i += 64u) {
    xs[i] = xs[i] * scale * nw[i];
    if (wg == 0u) h[i] = xs[i];
  }
  barrier();
  act_finish(p.n_in);
#else
  load_act(0u, p.n_in);
#endif
  for (uint r = r0; r < min(r0 + kRows, n_out); ++r) {
    const uint row = r * row_bytes;
    float acc = 0.0;
#if defined(V_OTHER)
    if (wsel == 2u)
      for (uint i = tid; i < p.n_in; i += 64u) acc += dequant_v(row + (i / QK_V) * QBYTES_V, i % QK_V) * xs[i];
    else
#endif
      for (uint i = tid; i < p.n_in; i += 64u) acc += dequant(row + (i / QK) * QBYTES, i % QK) * xs[i];
#if defined(SUBGROUP)
    acc = subgroupAdd(acc);
    if (subgroupElect()) part[(r - r0) * 16u + gl_SubgroupID] = acc;  // <= 16 subgroups of >= 4
  }
  barrier();
  if (tid < min(kRows, n_out - r0)) {
    const uint r = r0 + tid;
    float sum = 0.0;
    for (uint g = 0u; g < gl_NumSubgroups; ++g) sum += part[tid * 16u + g];
    put(r, sum);
  }
#else
    part[tid] = acc;
    barrier();
    for (uint s = 32u; s > 0u; s >>= 1) {
      if (tid < s) part[tid] += part[tid + s];
      barrier();
    }
    if (tid == 0u) put(r, part[0]);
    barrier();
  }
#endif
#if defined(ROUTE)
  memoryBarrierBuffer();  // this workgroup's logits before its count
  barrier();
  if (tid == 0u) {
    last = atomicAdd(done, 1u) == (p.n_out + kRows - 1u) / kRows - 1u;
  }
  barrier();
  if (!last) return;  // uniform per workgroup
  memoryBarrierBuffer();
  route_token(p.n_out, p.k);
  if (tid < p.k) {
    ids[tid] = int(route_id[tid]);
    wt[tid] = route_w[tid];
  }
  if (tid == 0u) done = 0u;
#endif
}
