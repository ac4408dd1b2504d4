#version 460
#extension GL_GOOGLE_include_directive : require
// Batch matmul (prefill): y[t][r] = sum_i W[r][i] x[t][i] for `rows` tokens, tiled. A workgroup owns
// a BM x BN block of outputs (BM weight rows, BN tokens) and walks the inputs BK = 32 at a time: the
// BM x BK weights are dequantized once into shared memory for all BN tokens (matmul.comp dequantizes
// each weight once per 8 tokens), the BN x BK activations (as quantize.comp leaves them) next to them.
//
// COOPMAT: subgroup-scope cooperative matrices (GL_KHR_cooperative_matrix) of the device's
// f16 x f16 -> f32 shape TM x TN x TK (specialization constants 0-2, from the properties query), four
// subgroups in 2 x 2, each with 2 x 2 tiles: BM = 4 TM, BN = 4 TN. The workgroup (constant 3) is 4 x
// the largest subgroup size the device may pick, so there are at least 4 subgroups (others only load).
// Every input v is held as two f16 values, hi ~ f16(v) and lo = f16((v - hi) * 2048), and
// y = hi*hi + (hi*lo + lo*hi) / 2048 with f32 accumulators: about 22 bits of each input (plain f16
// inputs would keep 11, an NMSE of ~1e-7 against the reference, above the Q8 budgets of the op
// sweep). Values beyond f16's range (65504) do not fit: activations are normed ones here.
// Otherwise (the twin, for devices without them): the same 32 x 32 x 32 tiles in f32 shared memory,
// 64 invocations with 4 x 4 outputs each.
// MOE (batches, grouped by expert): workgroup z is expert e; it walks the (token, slot) pairs routed
// to e (ids[pair] == e), BN at a time, with the weight rows of e's matrix: pair q reads x row
// q / x_div (gate/up: the token's row; down: the pair's own) and writes y row q.
#if defined(COOPMAT)
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
layout(constant_id = 0) const uint TM = 8;
layout(constant_id = 1) const uint TN = 8;
layout(constant_id = 2) const uint TK = 8;
layout(local_size_x_id = 3) in;
#else
const uint TM = 8, TN = 8;
layout(local_size_x = 64) in;
#endif
const uint BM = 4 * TM, BN = 4 * TN, BK = 32;
const uint SK = BK + 8;  // row stride of the shared tiles (padding against bank conflicts)

layout(binding = 0) readonly buffer W { uint w_words[]; };
layout(binding = 1) readonly buffer X { float x[]; };
layout(binding = 2) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P { uint n_in, n_out, rows, row_bytes, w_off, x_stride, y_stride, mat_stride, x_div; } p;
#if defined(MOE)
layout(binding = 3) readonly buffer Ids { int ids[]; };
#endif
#include "common/dequant.glsl"

#if defined(COOPMAT)
shared float16_t wh[BM * SK], wl[BM * SK], xh[BN * SK], xl[BN * SK];
shared float cst[4 * TM * TN];  // one accumulator tile per subgroup on its way out
// v = hi + lo / 2048: hi is v rounded to 11 significant bits in integer arithmetic (a compiler may
// fold float(float16_t(v)) back to v, and lo to 0), so it converts to f16 exactly; v - hi is exact.
void split(float v, out float16_t hi, out float16_t lo) {
  const uint b = floatBitsToUint(v);
  const float h = uintBitsToFloat((b + 0xfffu + ((b >> 13) & 1u)) & 0xffffe000u);
  hi = float16_t(h);
  lo = float16_t((v - h) * 2048.0);
}
void put_w(uint i, float v) { split(v, wh[i], wl[i]); }
void put_x(uint i, float v) { split(v, xh[i], xl[i]); }
#else
shared float ws[BM * SK], xs[BN * SK];
void put_w(uint i, float v) { ws[i] = v; }
void put_x(uint i, float v) { xs[i] = v; }
#endif

// The tokens of the current tile: i < BN is the tile's i-th, reading x row xrow(i) and writing y row yrow(i).
#if defined(MOE)
shared uint pl[BN];  // the tile's pairs
shared uint s_n, s_next;
uint n_tok;
bool has(uint i) { return i < n_tok; }
uint xrow(uint i) { return pl[i] / p.x_div; }
uint yrow(uint i) { return pl[i]; }
#else
uint t0;
bool has(uint i) { return t0 + i < p.rows; }
uint xrow(uint i) { return t0 + i; }
uint yrow(uint i) { return t0 + i; }
#endif

// One BM x BN block of outputs: weight rows r0.. of the matrix at byte wbase, the tile's tokens.
void tile(uint r0, uint wbase) {
  const uint tid = gl_LocalInvocationID.x, nt = gl_WorkGroupSize.x;
#if defined(COOPMAT)
  const uint sg = gl_SubgroupID, sm = (sg & 1u) * 2u, sn = (sg >> 1) * 2u;  // first tile row / column
  coopmat<float, gl_ScopeSubgroup, TM, TN, gl_MatrixUseAccumulator> acc[2][2], acc2[2][2];
  for (uint i = 0u; i < 2u; ++i)
    for (uint j = 0u; j < 2u; ++j) {
      acc[i][j] = coopmat<float, gl_ScopeSubgroup, TM, TN, gl_MatrixUseAccumulator>(0.0);
      acc2[i][j] = coopmat<float, gl_ScopeSubgroup, TM, TN, gl_MatrixUseAccumulator>(0.0);
    }
#else
  const uint tr = tid & 7u, tt = tid >> 3;  // outputs (r0 + tr + 8i, t0 + tt + 8j)
  float acc[4][4];
  for (uint i = 0u; i < 4u; ++i)
    for (uint j = 0u; j < 4u; ++j) acc[i][j] = 0.0;
#endif
  for (uint k0 = 0u; k0 < p.n_in; k0 += BK) {
    for (uint i = tid; i < BM * BK; i += nt) {
      const uint r = r0 + i / BK, k = k0 + i % BK;
      put_w((i / BK) * SK + i % BK, r < p.n_out && k < p.n_in ? dequant(wbase + r * p.row_bytes + (k / QK) * QBYTES, k % QK) : 0.0);
    }
    for (uint i = tid; i < BN * BK; i += nt) {
      const uint t = i / BK, k = k0 + i % BK;
      put_x(t * SK + i % BK, has(t) && k < p.n_in ? x[xrow(t) * p.x_stride + k] : 0.0);
    }
    barrier();
#if defined(COOPMAT)
    if (sg < 4u) {
      for (uint kk = 0u; kk < BK; kk += TK) {
        coopmat<float16_t, gl_ScopeSubgroup, TM, TK, gl_MatrixUseA> ah[2], al[2];
        coopmat<float16_t, gl_ScopeSubgroup, TK, TN, gl_MatrixUseB> bh[2], bl[2];
        for (uint i = 0u; i < 2u; ++i) {
          coopMatLoad(ah[i], wh, (sm + i) * TM * SK + kk, SK, gl_CooperativeMatrixLayoutRowMajor);
          coopMatLoad(al[i], wl, (sm + i) * TM * SK + kk, SK, gl_CooperativeMatrixLayoutRowMajor);
        }
        for (uint j = 0u; j < 2u; ++j) {  // B[k][t] = x tile [t][k]: column-major
          coopMatLoad(bh[j], xh, (sn + j) * TN * SK + kk, SK, gl_CooperativeMatrixLayoutColumnMajor);
          coopMatLoad(bl[j], xl, (sn + j) * TN * SK + kk, SK, gl_CooperativeMatrixLayoutColumnMajor);
        }
        for (uint i = 0u; i < 2u; ++i)
          for (uint j = 0u; j < 2u; ++j) {
            acc[i][j] = coopMatMulAdd(ah[i], bh[j], acc[i][j]);
            acc2[i][j] = coopMatMulAdd(ah[i], bl[j], acc2[i][j]);
            acc2[i][j] = coopMatMulAdd(al[i], bh[j], acc2[i][j]);
          }
      }
    }
#else
    for (uint k = 0u; k < BK; ++k) {
      float wv[4];
      for (uint i = 0u; i < 4u; ++i) wv[i] = ws[(tr + 8u * i) * SK + k];
      for (uint j = 0u; j < 4u; ++j) {
        const float xv = xs[(tt + 8u * j) * SK + k];
        for (uint i = 0u; i < 4u; ++i) acc[i][j] += wv[i] * xv;
      }
    }
#endif
    barrier();
  }
#if defined(COOPMAT)
  const uint base = sg * TM * TN;
  if (sg < 4u)
  for (uint i = 0u; i < 2u; ++i)
    for (uint j = 0u; j < 2u; ++j) {
      coopmat<float, gl_ScopeSubgroup, TM, TN, gl_MatrixUseAccumulator> res = acc[i][j] + acc2[i][j] * (1.0 / 2048.0);
      coopMatStore(res, cst, base, TN, gl_CooperativeMatrixLayoutRowMajor);
      subgroupMemoryBarrierShared();
      subgroupBarrier();
      for (uint e = gl_SubgroupInvocationID; e < TM * TN; e += gl_SubgroupSize) {
        const uint r = r0 + (sm + i) * TM + e / TN, t = (sn + j) * TN + e % TN;
        if (r < p.n_out && has(t)) y[yrow(t) * p.y_stride + r] = cst[base + e];
      }
      subgroupBarrier();
    }
#else
  for (uint i = 0u; i < 4u; ++i)
    for (uint j = 0u; j < 4u; ++j) {
      const uint r = r0 + tr + 8u * i, t = tt + 8u * j;
      if (r < p.n_out && has(t)) y[yrow(t) * p.y_stride + r] = acc[i][j];
    }
#endif
}

void main() {
  const uint r0 = gl_WorkGroupID.x * BM;
#if defined(MOE)
  const uint e = gl_WorkGroupID.z;
  uint next = 0u;
  do {  // the next BN pairs of expert e (one invocation scans; the list is short next to the tile's work)
    if (gl_LocalInvocationID.x == 0u) {
      uint n = 0u, q = next;
      for (; q < p.rows && n < BN; ++q)
        if (uint(ids[q]) == e) pl[n++] = q;
      s_n = n;
      s_next = q;
    }
    barrier();
    n_tok = s_n;
    next = s_next;
    if (n_tok > 0u) tile(r0, e * p.mat_stride);
    barrier();  // pl is rewritten next
  } while (next < p.rows);
#else
  t0 = gl_WorkGroupID.y * BN;
  tile(r0, p.w_off);
#endif
}
