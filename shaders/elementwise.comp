#version 460
// Element-wise ops over n values (OP_ADD: y += x; OP_ADD_BIAS: y[i] += b[i % bn];
// OP_SWIGLU: y = silu(y) * x). References: RefStream::add, add_bias, swiglu.
layout(local_size_x = 256) in;
layout(binding = 0) buffer Y { float y[]; };
layout(binding = 1) readonly buffer X { float x[]; };
layout(push_constant) uniform P { uint n, bn; } p;

void main() {
  const uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u + gl_LocalInvocationID.x;
  if (i >= p.n) return;
#if defined(OP_ADD)
  y[i] += x[i];
#elif defined(OP_ADD_BIAS)
  y[i] += x[i % p.bn];
#elif defined(OP_SWIGLU)
  const float g = y[i];
  y[i] = g / (1.0 + exp(-g)) * x[i];
#endif
}
