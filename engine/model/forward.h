// The forward pass of a batch of tokens (from one or more sequences): the batch description, the
// scratch it runs in (allocated once per context), and the per-architecture entry points.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#include "core/thread_pool.h"
#include "engine/kv/kv_cache.h"
#include "engine/model/model.h"
#include "engine/ops/matmul.h"

namespace tessera::engine {

struct Batch {
  int64_t n_tokens = 0;
  const int32_t* tokens = nullptr;              // [n_tokens]
  const int32_t* pos = nullptr;                 // [n_tokens] position in its sequence
  const int32_t* const* block_table = nullptr;  // [n_tokens] KV block ids of its sequence
  const int32_t* out_rows = nullptr;            // [n_out] tokens whose logits are wanted
  int64_t n_out = 0;
  float* logits = nullptr;                      // [n_out][n_vocab]
};

// Where the time of forward passes goes (TESSERA_PROFILE=1; printed when the context ends).
// mark(stage) charges the time since the previous mark to `stage`; off, it is one branch.
enum class Stage { Embed, Norms, QKV, RopeKV, Attention, AttnOut, Router, Routing, ExpertsGateUp, ExpertsDown,
                   ExpertsSum, FFN, Output, kCount };
struct StageProfile {
  bool on = false;
  int kind = 0;  // 0: decode (one token per sequence), 1: batch
  double ms[2][static_cast<int>(Stage::kCount)] = {};
  int64_t forwards[2] = {}, tokens[2] = {};
  std::chrono::steady_clock::time_point last;
  void begin(int64_t n_tokens, bool decode) {
    if (!on) return;
    kind = decode ? 0 : 1;
    ++forwards[kind];
    tokens[kind] += n_tokens;
    last = std::chrono::steady_clock::now();
  }
  void mark(Stage s) {
    if (!on) return;
    const auto now = std::chrono::steady_clock::now();
    ms[kind][static_cast<int>(s)] += std::chrono::duration<double, std::milli>(now - last).count();
    last = now;
  }
  void print() const;  // to stderr
};

// Scratch for up to n_batch tokens; sized once, never reallocated in the forward pass.
struct Workspace {
  Workspace(const ModelConfig& c, int64_t n_batch);
  uint64_t bytes() const;

  int64_t n_batch;
  std::vector<float> x;          // [n_batch][n_embd] residual stream
  std::vector<float> h;          // [n_batch][n_embd] normed input / projection output
  std::vector<float> q;          // [n_batch][n_head*head_dim]
  std::vector<float> k, v;       // [n_batch][n_head_kv*head_dim]
  std::vector<float> attn;       // [n_batch][n_head*head_dim]
  std::vector<float> rope_cos, rope_sin;  // [n_batch][head_dim/2]
  std::vector<float> ffn_gate, ffn_up;    // dense: [n_batch][n_ff]
  // MoE
  std::vector<float> router;          // [n_batch][n_expert] logits, then probabilities
  std::vector<int32_t> sel_expert;    // [n_batch][n_expert_used]
  std::vector<float> sel_weight;      // [n_batch][n_expert_used]
  std::vector<int32_t> sel_row;       // [n_batch][n_expert_used] row of (token, slot) in the expert buffers
  std::vector<int32_t> expert_count, expert_offset, expert_fill;  // [n_expert]
  std::vector<float> moe_x;           // [n_batch*n_expert_used][n_embd] inputs grouped by expert
  std::vector<float> moe_gate, moe_up;  // [n_batch*n_expert_used][n_ff_exp]
  std::vector<float> moe_down;        // [n_batch*n_expert_used][n_embd]
  std::vector<ops::MatmulJob> jobs;   // capacity 2*n_expert + 3
  std::vector<float> out_h;           // [n_batch][n_embd] final-normed rows for the output head
  // Batch bookkeeping filled by Context
  std::vector<int32_t> pos, out_rows;
  std::vector<const int32_t*> block_table;
  StageProfile prof;
};

// Runs the model on a batch: writes K/V of every token into the cache and the requested logits.
void forward(const Model& m, const Batch& b, KvCache& kv, Workspace& ws, ThreadPool& pool);

void forward_qwen3moe(const Model& m, const Batch& b, KvCache& kv, Workspace& ws, ThreadPool& pool);
void forward_qwen3(const Model& m, const Batch& b, KvCache& kv, Workspace& ws, ThreadPool& pool);
void forward_qwen2(const Model& m, const Batch& b, KvCache& kv, Workspace& ws, ThreadPool& pool);

// Shared blocks (engine/model/blocks.cpp).
// Runs fn(begin, end) over [0, n) split into chunks of about `grain` rows on the pool (inline when
// the work is small), for the row-wise ops around the matmuls.
void parallel_rows(ThreadPool& pool, int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);
void embed_tokens(const Model& m, const Batch& b, Workspace& ws);                 // ws.x = embeddings
void prepare_rope(const Model& m, const Batch& b, Workspace& ws);                 // angle tables
// x += Wo attention(rope(qk_norm(Wq h + bq)), rope(qk_norm(Wk h + bk)), Wv h + bv), h = rmsnorm(x) * attn_norm
void attention_block(const Model& m, int layer, const Batch& b, KvCache& kv, Workspace& ws, ThreadPool& pool);
// x += Wdown(silu(Wgate h) * Wup h), h = rmsnorm(x) * ffn_norm
void dense_ffn_block(const Model& m, int layer, const Batch& b, Workspace& ws, ThreadPool& pool);
// logits = Wout (rmsnorm(x) * output_norm) (+ bias) for the requested rows
void output_head(const Model& m, const Batch& b, Workspace& ws, ThreadPool& pool);

}  // namespace tessera::engine
