// qwen3moe forward pass (Qwen3-30B-A3B, Qwen3-Coder-30B-A3B): per layer, attention with QK-norm
// and NEOX RoPE, then a mixture of experts: softmax router over all experts, top-k, renormalised
// weights, SwiGLU experts, weighted sum. Formulas: shared reference "qwen3moe forward".
#include <algorithm>
#include <cstring>

#include "engine/model/forward.h"
#include "kernels/cpu/elementwise.h"

namespace tessera::engine {

namespace {

// p = softmax(r) over all n_expert router logits (in place), sel = the k largest, w_j = p_j / sum(p_sel)
// (the sum clamped below at 6.1035e-5, as llama.cpp).
void route(float* r, int64_t n_expert, int k, int32_t* sel, float* w) {
  ops::softmax(r, n_expert);
  ops::top_k(r, n_expert, k, sel);
  float sum = 0.0f;
  for (int j = 0; j < k; ++j) sum += r[sel[j]];
  sum = std::max(sum, 6.1035e-5f);
  for (int j = 0; j < k; ++j) w[j] = r[sel[j]] / sum;
}

// x += sum_j w_j * Wdown_j(silu(Wgate_j h) * Wup_j h) over the k experts the router picks for each
// token, h = rmsnorm(x) * ffn_norm. The batch's (token, slot) pairs are grouped by expert, so each
// selected expert's weights are read once per step: all gate+up products in one matmul call, then
// all down products in one call.
void moe_block(const Model& m, int layer, const Batch& b, Workspace& ws, ThreadPool& pool) {
  const ModelConfig& c = m.config();
  const LayerWeights& L = m.weights().layers[static_cast<size_t>(layer)];
  const int64_t n = b.n_tokens, E = c.n_embd, F = c.n_ff_exp, X = c.n_expert;
  const int K = static_cast<int>(c.n_expert_used);

  // h = rmsnorm(x) * ffn_norm
  parallel_rows(pool, n, 32, [&](int64_t t0, int64_t t1) {
    ops::rmsnorm(ws.x.data() + t0 * E, E, ws.h.data() + t0 * E, E, L.ffn_norm, t1 - t0, E, c.eps);
  });
  ws.prof.mark(Stage::Norms);

  // router logits r = Wr h, p = softmax(r) over all experts, the K largest, w_j = p_j / sum(p_sel)
  ops::matmul(ops::MatmulJob{L.router, ws.h.data(), E, n, ws.router.data(), X}, pool);
  ws.prof.mark(Stage::Router);
  parallel_rows(pool, n, 32, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t)
      route(ws.router.data() + t * X, X, K, ws.sel_expert.data() + t * K, ws.sel_weight.data() + t * K);
  });

  // Group (token, slot) pairs by expert (counting sort): expert e owns rows
  // [offset[e], offset[e] + count[e]) of the expert buffers.
  std::fill(ws.expert_count.begin(), ws.expert_count.end(), 0);
  for (int64_t i = 0; i < n * K; ++i) ++ws.expert_count[static_cast<size_t>(ws.sel_expert[i])];
  int32_t rows = 0;
  for (int64_t e = 0; e < X; ++e) {
    ws.expert_offset[e] = rows;
    ws.expert_fill[e] = 0;
    rows += ws.expert_count[e];
  }
  for (int64_t i = 0; i < n * K; ++i) {
    const int32_t e = ws.sel_expert[i];
    ws.sel_row[i] = ws.expert_offset[e] + ws.expert_fill[e]++;
  }
  // Expert inputs: one token uses h itself; a batch gathers each pair's h row.
  const bool gather = n > 1;
  if (gather)
    parallel_rows(pool, n * K, 64, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        std::memcpy(ws.moe_x.data() + static_cast<int64_t>(ws.sel_row[i]) * E, ws.h.data() + (i / K) * E,
                    static_cast<size_t>(E) * sizeof(float));
    });

  ws.prof.mark(Stage::Routing);

  // g = Wgate_e x, u = Wup_e x for every active expert (one call)
  ws.jobs.clear();
  for (int64_t e = 0; e < X; ++e) {
    const int64_t cnt = ws.expert_count[e], off = ws.expert_offset[e];
    if (cnt == 0) continue;
    const float* xin = gather ? ws.moe_x.data() + off * E : ws.h.data();
    ws.jobs.push_back({L.gate_exps.expert(e), xin, E, cnt, ws.moe_gate.data() + off * F, F});
    ws.jobs.push_back({L.up_exps.expert(e), xin, E, cnt, ws.moe_up.data() + off * F, F});
  }
  ops::matmul(ws.jobs, pool);
  ws.prof.mark(Stage::ExpertsGateUp);

  // a = silu(g) * u
  parallel_rows(pool, rows, 32, [&](int64_t r0, int64_t r1) {
    ops::swiglu(ws.moe_gate.data() + r0 * F, ws.moe_up.data() + r0 * F, (r1 - r0) * F);
  });

  // y_e = Wdown_e a for every active expert (one call)
  ws.jobs.clear();
  for (int64_t e = 0; e < X; ++e) {
    const int64_t cnt = ws.expert_count[e], off = ws.expert_offset[e];
    if (cnt == 0) continue;
    ws.jobs.push_back({L.down_exps.expert(e), ws.moe_gate.data() + off * F, F, cnt, ws.moe_down.data() + off * E, E});
  }
  ops::matmul(ws.jobs, pool);
  ws.prof.mark(Stage::ExpertsDown);

  // x = x + sum_j w_j y_j, summed in slot order
  // (the sum is built in place in the row of slot 0, which is not needed afterwards)
  parallel_rows(pool, n, 16, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int32_t* row = ws.sel_row.data() + t * K;
      const float* w = ws.sel_weight.data() + t * K;
      float* acc = ws.moe_down.data() + static_cast<int64_t>(row[0]) * E;
      for (int64_t i = 0; i < E; ++i) acc[i] *= w[0];
      for (int j = 1; j < K; ++j) ops::axpy(acc, w[j], ws.moe_down.data() + static_cast<int64_t>(row[j]) * E, E);
      ops::add(ws.x.data() + t * E, acc, E);
    }
  });
  ws.prof.mark(Stage::ExpertsSum);
}

}  // namespace

void forward_qwen3moe(const Model& m, const Batch& b, KvCache& kv, Workspace& ws, ThreadPool& pool) {
  embed_tokens(m, b, ws);  // x = token_embd[tokens]
  prepare_rope(m, b, ws);
  for (int layer = 0; layer < static_cast<int>(m.config().n_layer); ++layer) {
    attention_block(m, layer, b, kv, ws, pool);  // x += attention(rmsnorm(x) * attn_norm)
    moe_block(m, layer, b, ws, pool);            // x += experts(rmsnorm(x) * ffn_norm)
  }
  output_head(m, b, ws, pool);  // logits = Wout (rmsnorm(x) * output_norm)
}

}  // namespace tessera::engine
