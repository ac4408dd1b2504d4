// MoE router on the device: one wave per token. p = softmax(logits); the k largest in order (larger
// logit first, lower expert id first on ties: the reference's order), w_j = p_j / max(sum p_sel, 2^-14).
#include "kernels/hip/common.h"

namespace tessera::hip {

// One wave: the top-k of the n_expert logits r into ids[0..k) and w[0..k) (lane 0 writes them).
__device__ inline void route_row(const float* r, int32_t n_expert, int32_t k, int32_t* ids, float* w, int lane) {
  constexpr int kMaxPerLane = 16;  // n_expert <= 512
  float mx = -__builtin_inff();
  for (int e = lane; e < n_expert; e += kWave) mx = __builtin_fmaxf(mx, r[e]);
  mx = wave_max(mx);
  float sum = 0.0f;
  for (int e = lane; e < n_expert; e += kWave) sum += __builtin_expf(r[e] - mx);
  sum = wave_sum(sum);
  uint32_t taken = 0;  // bit i: expert lane + 32 i is selected
  float sel = 0.0f;
  for (int j = 0; j < k; ++j) {
    float best = -__builtin_inff();
    int best_e = n_expert;
    for (int i = 0; i < kMaxPerLane; ++i) {
      const int e = lane + kWave * i;
      if (e < n_expert && !(taken >> i & 1u) && (r[e] > best || best_e == n_expert)) {
        best = r[e];
        best_e = e;
      }
    }
    for (int m = 16; m > 0; m >>= 1) {  // wave arg-max, ties to the lower id
      const float ob = __shfl_xor(best, m);
      const int oe = __shfl_xor(best_e, m);
      if (oe < n_expert && (best_e == n_expert || ob > best || (ob == best && oe < best_e))) {
        best = ob;
        best_e = oe;
      }
    }
    if (best_e % kWave == lane) taken |= 1u << (best_e / kWave);
    const float p = __builtin_expf(best - mx) / sum;
    sel += p;
    if (lane == 0) {
      ids[j] = best_e;
      w[j] = p;
    }
  }
  sel = __builtin_fmaxf(sel, 6.1035e-5f);
  if (lane == 0)
    for (int j = 0; j < k; ++j) w[j] /= sel;
}

TESSERA_KERNEL(route_topk, RouteArgs) {
  const int64_t t = blockIdx.x;
  route_row(a.logits + t * a.n_expert, a.n_expert, a.k, a.ids + t * a.k, a.w + t * a.k, (int)threadIdx.x);
}

}  // namespace tessera::hip
