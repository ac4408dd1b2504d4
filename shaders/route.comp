#version 460
// Router of one token per invocation: p = softmax(logits) over n_expert, ids = the k largest (lower id
// first on ties), w_j = p_j / max(sum of the k p's, 6.1035e-5). Ranking by the logits is ranking by p.
// Reference: RefStream::route (engine/backend/ref_backend.cpp).
layout(local_size_x = 1) in;
layout(binding = 0) readonly buffer L { float lg[]; };  // [n_tokens][n_expert]
layout(binding = 1) writeonly buffer I { int ids[]; };  // [n_tokens][k]
layout(binding = 2) buffer Wt { float w[]; };           // [n_tokens][k]
layout(push_constant) uniform P { uint n_expert, k; } p;
const uint kMaxExpert = 512;

void main() {
  const uint t = gl_WorkGroupID.x, base = t * p.n_expert;
  float mx = lg[base];
  for (uint e = 1u; e < p.n_expert; ++e) mx = max(mx, lg[base + e]);
  float sum = 0.0;
  for (uint e = 0u; e < p.n_expert; ++e) sum += exp(lg[base + e] - mx);
  uint taken[kMaxExpert / 32];
  for (uint i = 0u; i < kMaxExpert / 32; ++i) taken[i] = 0u;
  float sel = 0.0;
  for (uint j = 0u; j < p.k; ++j) {
    uint best = 0xffffffffu;
    for (uint e = 0u; e < p.n_expert; ++e)
      if ((taken[e >> 5] & (1u << (e & 31u))) == 0u && (best == 0xffffffffu || lg[base + e] > lg[base + best])) best = e;
    taken[best >> 5] |= 1u << (best & 31u);
    const float pj = exp(lg[base + best] - mx) / sum;
    ids[t * p.k + j] = int(best);
    w[t * p.k + j] = pj;
    sel += pj;
  }
  sel = max(sel, 6.1035e-5);
  for (uint j = 0u; j < p.k; ++j) w[t * p.k + j] /= sel;
}
