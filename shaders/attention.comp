#version 460
#extension GL_GOOGLE_include_directive : require
// out = softmax(q k^T * scale, causal) v for one (token, query head) per workgroup over the token's
// paged f16 KV (keys 0..pos), in tiles of 64 keys with an online softmax: each invocation scores one
// key of the tile, then each accumulates its own output dimensions (head_dim <= 256).
// Reference: RefStream::attention.
layout(local_size_x = 64) in;
layout(binding = 0) readonly buffer Q { float q[]; };
#define BATCH_BINDING 1
#include "common/batch.glsl"
layout(binding = 2) readonly buffer KC { uint kc[]; };  // f16 pairs, [layer][block][slot][kv head][head_dim]
layout(binding = 3) readonly buffer VC { uint vc[]; };
layout(binding = 4) writeonly buffer O { float o[]; };
layout(push_constant) uniform P {
  uint n_head, n_head_kv, head_dim, n_blocks, layer, off_pos, off_tbl;
  float scale;
} p;
const uint kBlock = 32, kTile = 64;
shared float qs[256];
shared float score[kTile];

// word offset of (key j, kv head) in the cache of this layer, for the token whose table starts at tbl
uint key_words(uint tbl, uint j, uint kvh) {
  const uint blk = batch[tbl + j / kBlock];
  return (((p.layer * p.n_blocks + blk) * kBlock + j % kBlock) * p.n_head_kv + kvh) * (p.head_dim / 2u);
}

void main() {
  const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
  const uint kvh = h / (p.n_head / p.n_head_kv), hd = p.head_dim;
  const uint n_keys = batch[p.off_pos + t] + 1u, tbl = batch[p.off_tbl + t];
  const uint qbase = (t * p.n_head + h) * hd;
  for (uint d = tid; d < hd; d += 64u) qs[d] = q[qbase + d];
  barrier();
  float m = -1.0 / 0.0, l = 0.0, acc[4] = float[4](0, 0, 0, 0);  // dims tid, tid+64, ...
  for (uint base = 0u; base < n_keys; base += kTile) {
    const uint j = base + tid;
    float s = -1.0 / 0.0;
    if (j < n_keys) {
      const uint kw = key_words(tbl, j, kvh);
      float dot = 0.0;
      for (uint d = 0u; d < hd; d += 2u) {
        const vec2 kv = unpackHalf2x16(kc[kw + d / 2u]);
        dot += qs[d] * kv.x + qs[d + 1u] * kv.y;
      }
      s = dot * p.scale;
    }
    score[tid] = s;
    barrier();
    const uint n = min(kTile, n_keys - base);
    float mt = m;
    for (uint i = 0u; i < n; ++i) mt = max(mt, score[i]);
    const float f = exp(m - mt);
    l *= f;
    for (uint c = 0u; c < 4u; ++c) acc[c] *= f;
    for (uint i = 0u; i < n; ++i) {
      const float e = exp(score[i] - mt);
      l += e;
      const uint vw = key_words(tbl, base + i, kvh);
      for (uint c = 0u; c < 4u; ++c) {
        const uint d = tid + 64u * c;
        if (d < hd) acc[c] += e * unpackHalf2x16(vc[vw + d / 2u])[d & 1u];
      }
    }
    m = mt;
    barrier();  // score[] is rewritten by the next tile
  }
  for (uint c = 0u; c < 4u; ++c) {
    const uint d = tid + 64u * c;
    if (d < hd) o[qbase + d] = acc[c] / l;
  }
}
