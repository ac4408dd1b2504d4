#version 460
#extension GL_GOOGLE_include_directive : require
// x[t] = dequant(table row tokens[t]) over n_embd values. One workgroup per token.
// Reference: RefStream::embed (engine/backend/ref_backend.cpp).
layout(local_size_x = 256) in;
layout(binding = 0) readonly buffer W { uint w_words[]; };
#define BATCH_BINDING 1
#include "common/batch.glsl"
layout(binding = 2) writeonly buffer X { float x[]; };
layout(push_constant) uniform P { uint n_embd, row_bytes, off_tokens; } p;
#include "common/dequant.glsl"

void main() {
  const uint t = gl_WorkGroupID.x;
  const uint row = p.row_bytes * batch[p.off_tokens + t];
  for (uint i = gl_LocalInvocationID.x; i < p.n_embd; i += 256u)
    x[t * p.n_embd + i] = dequant(row + (i / QK) * QBYTES, i % QK);
}
