// The forward pass of a batch of tokens (from one or more sequences) against the backend interface:
// the scratch it runs in (allocated once per context on the backend) and the forward of each
// architecture family (forward_moe.cpp: qwen3moe; forward_dense.cpp: qwen3, qwen2, llama).
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/model/model.h"

namespace tessera::engine {

// Where the time of forward passes goes (TESSERA_PROFILE=1; printed when the context ends).
// mark(stage) charges the time since the previous mark to `stage`; off, it is one branch.
enum class Stage { Embed, Norms, QKV, RopeKV, Attention, AttnOut, Router, Routing, Experts, FFN, Output, kCount };
struct StageProfile {
  bool on = false;
  int kind = 0;  // 0: decode (one token per sequence), 1: batch
  double ms[2][static_cast<int>(Stage::kCount)] = {};
  int64_t forwards[2] = {}, tokens[2] = {};
  std::chrono::steady_clock::time_point last;
  Stream* stream = nullptr;  // synced at each mark so the time lands on the stage that spent it
  void begin(int64_t n_tokens, bool decode) {
    if (!on) return;
    kind = decode ? 0 : 1;
    ++forwards[kind];
    tokens[kind] += n_tokens;
    last = std::chrono::steady_clock::now();
  }
  void mark(Stage s) {
    if (!on) return;
    if (stream) stream->sync();
    const auto now = std::chrono::steady_clock::now();
    ms[kind][static_cast<int>(s)] += std::chrono::duration<double, std::milli>(now - last).count();
    last = now;
  }
  void print() const;  // to stderr
};

// Activations for up to n_batch tokens, in backend memory; sized once, never reallocated.
struct Workspace {
  // The byte size of each buffer for n_batch tokens (0: not used by this architecture). The
  // constructor allocates exactly these; memory planning sums them without allocating.
  struct Sizes {
    size_t x = 0, h = 0, q = 0, k = 0, v = 0, attn = 0, ffn_gate = 0, ffn_up = 0, router = 0, expert_ids = 0,
           expert_w = 0, out_h = 0;
    uint64_t total() const {
      return uint64_t{x} + h + q + k + v + attn + ffn_gate + ffn_up + router + expert_ids + expert_w + out_h;
    }
  };
  static Sizes sizes(const ModelConfig& c, int64_t n_batch);

  Workspace(Backend& backend, const ModelConfig& c, int64_t n_batch);
  uint64_t bytes() const;

  int64_t n_batch;
  std::unique_ptr<Buffer> x;          // [n_batch][n_embd] residual stream
  std::unique_ptr<Buffer> h;          // [n_batch][n_embd] normed input / projection output
  std::unique_ptr<Buffer> q;          // [n_batch][n_head * head_dim]
  std::unique_ptr<Buffer> k, v;       // [n_batch][n_head_kv * head_dim]
  std::unique_ptr<Buffer> attn;       // [n_batch][n_head * head_dim]
  std::unique_ptr<Buffer> ffn_gate, ffn_up;  // dense: [n_batch][n_ff]
  std::unique_ptr<Buffer> router;     // MoE: [n_batch][n_expert] router logits
  std::unique_ptr<Buffer> expert_ids; // MoE: int32 [n_batch][n_expert_used]
  std::unique_ptr<Buffer> expert_w;   // MoE: [n_batch][n_expert_used] routing weights
  std::unique_ptr<Buffer> out_h;      // [n_batch][n_embd] final-normed rows for the output head
  StageProfile prof;
};

// Runs the model on a batch: writes K/V of every token into the cache and the requested logits.
void forward(const Model& m, const Batch& b, KvStore& kv, Workspace& ws, Stream& s);

// The architecture families (the Architecture table in model.cpp points at these).
void forward_moe(const Model& m, const Batch& b, KvStore& kv, Workspace& ws, Stream& s);
void forward_dense(const Model& m, const Batch& b, KvStore& kv, Workspace& ws, Stream& s);

// Shared blocks (engine/model/blocks.cpp).
// x += Wo attention(rope(qk_norm(Wq h + bq)), rope(qk_norm(Wk h + bk)), Wv h + bv), h = rmsnorm(x) * attn_norm
void attention_block(const Model& m, int layer, const Batch& b, KvStore& kv, Workspace& ws, Stream& s);
// logits = Wout (rmsnorm(x) * output_norm) (+ bias) for the requested rows
void output_head(const Model& m, const Batch& b, Workspace& ws, Stream& s);

}  // namespace tessera::engine
