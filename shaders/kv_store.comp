#version 460
#extension GL_GOOGLE_include_directive : require
// K and V rows ([n_tokens][n_head_kv][head_dim], f32) into the f16 paged KV, laid out
// [layer][block][slot][kv head][head_dim] (as RefKv), one invocation per pair of values.
// Reference: RefStream::kv_store.
layout(local_size_x = 64) in;
layout(binding = 0) readonly buffer K { vec2 k[]; };
layout(binding = 1) readonly buffer V { vec2 v[]; };
#define BATCH_BINDING 2
#include "common/batch.glsl"
layout(binding = 3) buffer KC { uint kc[]; };  // f16 pairs
layout(binding = 4) buffer VC { uint vc[]; };
layout(push_constant) uniform P { uint n_tokens, n_head_kv, head_dim, n_blocks, layer, off_pos, off_tbl; } p;
const uint kBlock = 32;

void main() {
  const uint pairs = p.n_head_kv * p.head_dim / 2u, i = gl_GlobalInvocationID.x, t = gl_WorkGroupID.y;
  if (i >= pairs) return;
  const uint pos = batch[p.off_pos + t];
  const uint blk = batch[batch[p.off_tbl + t] + pos / kBlock];
  const uint dst = ((p.layer * p.n_blocks + blk) * kBlock + pos % kBlock) * pairs + i;
  kc[dst] = packHalf2x16(k[t * pairs + i]);
  vc[dst] = packHalf2x16(v[t * pairs + i]);
}
