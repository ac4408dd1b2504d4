// The router of one token by a workgroup of 64 (shaders/route.comp; shaders/gemv.comp ROUTE):
// p = softmax(logits) over n experts, the k largest (lower id first on ties: ranking by the logits is
// ranking by p), w_j = p_j / max(sum of the k p's, 6.1035e-5). Leaves route_id[0..k) and
// route_w[0..k) in shared memory. The including shader defines ROUTE_LG(i), logit i of the token.
// Reference: RefStream::route (engine/backend/ref_backend.cpp).
const uint kMaxK = 64;
shared float route_part[64];
shared uint route_id[kMaxK];
shared float route_w[kMaxK];

void route_token(uint n, uint k) {
  const uint tid = gl_LocalInvocationID.x;
  float m = ROUTE_LG(0u);
  for (uint e = tid; e < n; e += 64u) m = max(m, ROUTE_LG(e));
  route_part[tid] = m;
  barrier();
  for (uint s = 32u; s > 0u; s >>= 1) {
    if (tid < s) route_part[tid] = max(route_part[tid], route_part[tid + s]);
    barrier();
  }
  const float mx = route_part[0];
  barrier();
  float sum = 0.0;
  for (uint e = tid; e < n; e += 64u) sum += exp(ROUTE_LG(e) - mx);
  route_part[tid] = sum;
  barrier();
  for (uint s = 32u; s > 0u; s >>= 1) {
    if (tid < s) route_part[tid] += route_part[tid + s];
    barrier();
  }
  // the rank of each expert: how many come before it; the first k take their slots
  for (uint e = tid; e < n; e += 64u) {
    const float v = ROUTE_LG(e);
    uint rank = 0u;
    for (uint o = 0u; o < n && rank < k; ++o) {
      const float u = ROUTE_LG(o);
      if (u > v || (u == v && o < e)) ++rank;
    }
    if (rank < k) route_id[rank] = e;
  }
  barrier();
  if (tid == 0u) {
    float sel = 0.0;
    for (uint j = 0u; j < k; ++j) {
      route_w[j] = exp(ROUTE_LG(route_id[j]) - mx) / route_part[0];
      sel += route_w[j];
    }
    sel = max(sel, 6.1035e-5);
    for (uint j = 0u; j < k; ++j) route_w[j] /= sel;
  }
  barrier();
}
