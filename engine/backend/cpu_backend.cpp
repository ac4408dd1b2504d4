// The CPU backend: host memory, weights zero-copy in the mapped file, the SIMD kernels of kernels/cpu
// (matmul kernels chosen per weight at load, attention and element-wise kernels per stream, both from
// the registry with the model's KernelPolicy), and a thread pool per stream. Row-wise ops split rows over the pool;
// MoE groups each step's (token, expert) pairs by expert so each selected expert is read once.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "engine/backend/cpu_kv.h"
#include "engine/backend/cpu_matmul.h"
#include "engine/backend/host.h"
#include "engine/model/model.h"
#include "gguf/codecs.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/elementwise.h"

namespace tessera::engine {

namespace {

// Runs fn(begin, end) over [0, n) in chunks of about `grain` rows on the pool (inline when small).
void parallel_rows(ThreadPool& pool, int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  if (pool.size() == 1 || n <= grain) return fn(0, n);
  const int64_t n_chunks = (n + grain - 1) / grain;
  pool.parallel_for(n_chunks, [&](int64_t c, int) { fn(c * grain, std::min(n, (c + 1) * grain)); });
}

ops::MatmulJob job(const Matrix& w, const float* x, int64_t rows, float* y) {
  return ops::MatmulJob{w.view, x, w.view.n_in, rows, y, w.view.n_out, &w.kernels};
}

class CpuStream final : public Stream {
 public:
  CpuStream(const ModelConfig& c, const StreamOptions& o, const ops::DeviceCaps& caps)
      : c_(c), ops_(ops::BoundOps::bind(o.kernels, caps, c.head_dim, c.rope_type)), pool_(std::max(1, o.n_threads)) {
    const size_t N = static_cast<size_t>(o.n_batch), hd2 = static_cast<size_t>(c.head_dim / 2);
    rope_cos_.resize(N * hd2);
    rope_sin_.resize(N * hd2);
    if (c.n_expert > 0) {
      const size_t K = static_cast<size_t>(c.n_expert_used), X = static_cast<size_t>(c.n_expert);
      const size_t E = static_cast<size_t>(c.n_embd), F = static_cast<size_t>(c.n_ff_exp);
      sel_row_.resize(N * K);
      expert_count_.resize(X);
      expert_offset_.resize(X);
      expert_fill_.resize(X);
      moe_x_.resize(N > 1 ? N * K * E : 0);  // a single token is not gathered
      moe_gate_.resize(N * K * F);
      moe_up_.resize(N * K * F);
      moe_down_.resize(N * K * E);
      jobs_.reserve(2 * X);
    }
  }

  void begin(const Batch& b) override {
    b_ = b;
    ops::rope_table(b.pos, b.n_tokens, c_.head_dim, c_.rope_base, rope_cos_.data(), rope_sin_.data(), c_.rope_freq_scale,
                    c_.rope_freq_factors.empty() ? nullptr : c_.rope_freq_factors.data());
  }

  void embed(const Table& table, Buffer& x) override {
    const gguf::TensorInfo& emb = *table.tensor;
    const size_t row = emb.row_bytes();
    for (int64_t t = 0; t < b_.n_tokens; ++t) {
      const int32_t id = b_.tokens[t];
      if (id < 0 || id >= c_.n_vocab) throw_error("token id {} is out of range (vocabulary of {})", id, c_.n_vocab);
      dequantize_row(emb.type, emb.data + static_cast<size_t>(id) * row, f32(x) + t * c_.n_embd, c_.n_embd);
    }
  }

  void rmsnorm(const Buffer& x, Buffer& y, const Vector& w, int64_t rows) override {
    const int64_t n = w.n;
    float *px = f32(x), *py = f32(y);
    parallel_rows(pool_, rows, std::max<int64_t>(32, 8192 / n), [&](int64_t r0, int64_t r1) {
      ops_.rmsnorm(px + r0 * n, n, py + r0 * n, n, w.host, r1 - r0, n, c_.eps);
    });
  }

  void rope(Buffer& x, int64_t n_head) override {
    const int64_t hd = c_.head_dim, half = hd / 2;
    float* p = f32(x);
    parallel_rows(pool_, b_.n_tokens, 16, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t)
        ops_.rope(p + t * n_head * hd, n_head, hd, rope_cos_.data() + t * half, rope_sin_.data() + t * half);
    });
  }

  void kv_store(KvStore& kv, int layer, const Buffer& k, const Buffer& v) override {
    auto& store = static_cast<CpuKv&>(kv);
    const int64_t kv_dim = c_.n_head_kv * c_.head_dim;
    const float *pk = f32(k), *pv = f32(v);
    parallel_rows(pool_, b_.n_tokens, 16, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) store.store(layer, b_.block_table[t], b_.pos[t], pk + t * kv_dim, pv + t * kv_dim);
    });
  }

  void kv_copy(KvStore& kv, int dst, int src) override { static_cast<CpuKv&>(kv).copy_block(dst, src); }

  void attention(KvStore& kv, int layer, const Buffer& q, Buffer& out) override {
    const auto& store = static_cast<const CpuKv&>(kv);
    const int64_t q_dim = c_.n_head * c_.head_dim;
    ops::AttentionArgs a;
    a.n_tokens = b_.n_tokens;
    a.n_head = static_cast<int>(c_.n_head);
    a.n_head_kv = static_cast<int>(c_.n_head_kv);
    a.head_dim = static_cast<int>(c_.head_dim);
    a.scale = 1.0f / std::sqrt(static_cast<float>(c_.head_dim));
    a.q = f32(q);
    a.q_stride = q_dim;
    a.out = f32(out);
    a.out_stride = q_dim;
    a.pos = b_.pos;
    a.block_table = b_.block_table;
    a.k_cache = store.k_layer(layer);
    a.v_cache = store.v_layer(layer);
    a.block_elems = store.head_block_elems();
    a.head_stride = store.head_stride();
    ops::attention(a, pool_, ops_.attention);
  }

  void matmul(std::span<const MatmulCall> calls) override {
    jobs_.clear();
    for (const MatmulCall& c : calls)
      jobs_.push_back(job(*c.w, f32(*c.x), c.rows < 0 ? b_.n_tokens : c.rows, f32(*c.y)));
    ops::matmul(jobs_, pool_);
  }

  void add_bias(Buffer& y, const Vector& b, int64_t rows) override {
    float* py = f32(y);
    for (int64_t r = 0; r < rows; ++r) ops::add(py + r * b.n, b.host, b.n);
  }

  void add(Buffer& y, const Buffer& x, int64_t n) override {
    float *py = f32(y), *px = f32(x);
    parallel_rows(pool_, b_.n_tokens, 64, [&](int64_t t0, int64_t t1) { ops::add(py + t0 * n, px + t0 * n, (t1 - t0) * n); });
  }

  void swiglu(Buffer& g, const Buffer& u, int64_t n) override {
    float *pg = f32(g), *pu = f32(u);
    parallel_rows(pool_, b_.n_tokens, 16, [&](int64_t t0, int64_t t1) { ops_.swiglu(pg + t0 * n, pu + t0 * n, (t1 - t0) * n); });
  }

  void route(const Buffer& logits, Buffer& ids, Buffer& w) override {
    const int64_t X = c_.n_expert;
    const int K = static_cast<int>(c_.n_expert_used);
    float* r = f32(logits);
    int32_t* sel = i32(ids);
    float* wt = f32(w);
    parallel_rows(pool_, b_.n_tokens, 32, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) route_token(r + t * X, X, K, sel + t * K, wt + t * K);
    });
  }

  void moe(const Matrix& gate, const Matrix& up, const Matrix& down, const Buffer& hb, const Buffer& idb,
           const Buffer& wb, Buffer& xb) override;

  void gather_out_rows(const Buffer& x, Buffer& out) override {
    const int64_t E = c_.n_embd;
    for (int64_t i = 0; i < b_.n_out; ++i)
      std::memcpy(f32(out) + i * E, f32(x) + static_cast<int64_t>(b_.out_rows[i]) * E, static_cast<size_t>(E) * sizeof(float));
  }

  void logits(const Matrix& w, const Vector& bias, const Buffer& h, float* host) override {
    ops::matmul(job(w, f32(h), b_.n_out, host), pool_);
    if (bias)
      for (int64_t i = 0; i < b_.n_out; ++i) ops::add(host + i * c_.n_vocab, bias.host, c_.n_vocab);
  }

  void sync() override {}

 private:
  // p = softmax(r) over all n_expert router logits (in place), sel = the k largest, w_j = p_j / sum(p_sel)
  // (the sum clamped below at 6.1035e-5, as llama.cpp).
  static void route_token(float* r, int64_t n_expert, int k, int32_t* sel, float* w) {
    ops::softmax(r, n_expert);
    ops::top_k(r, n_expert, k, sel);
    float sum = 0.0f;
    for (int j = 0; j < k; ++j) sum += r[sel[j]];
    sum = std::max(sum, 6.1035e-5f);
    for (int j = 0; j < k; ++j) w[j] = r[sel[j]] / sum;
  }

  const ModelConfig& c_;
  const ops::BoundOps ops_;  // attention, rmsnorm, rope, swiglu kernels of this stream
  ThreadPool pool_;
  Batch b_;
  std::vector<float> rope_cos_, rope_sin_;  // [n_batch][head_dim/2]
  // MoE grouping
  std::vector<int32_t> sel_row_;      // [n_batch][n_expert_used] row of (token, slot) in the expert buffers
  std::vector<int32_t> expert_count_, expert_offset_, expert_fill_;  // [n_expert]
  std::vector<float> moe_x_;          // [n_batch*n_expert_used][n_embd] inputs grouped by expert
  std::vector<float> moe_gate_, moe_up_;  // [n_batch*n_expert_used][n_ff_exp]
  std::vector<float> moe_down_;       // [n_batch*n_expert_used][n_embd]
  std::vector<ops::MatmulJob> jobs_;
};

// The batch's (token, slot) pairs are grouped by expert (counting sort), so each selected expert's
// weights are read once per step: all gate+up products in one matmul call, then all down products.
void CpuStream::moe(const Matrix& gate, const Matrix& up, const Matrix& down, const Buffer& hb, const Buffer& idb,
                    const Buffer& wb, Buffer& xb) {
  const int64_t n = b_.n_tokens, E = c_.n_embd, F = c_.n_ff_exp, X = c_.n_expert;
  const int K = static_cast<int>(c_.n_expert_used);
  const float* h = f32(hb);
  const int32_t* sel = i32(idb);
  const float* wt = f32(wb);
  float* x = f32(xb);

  // expert e owns rows [offset[e], offset[e] + count[e]) of the expert buffers
  std::fill(expert_count_.begin(), expert_count_.end(), 0);
  for (int64_t i = 0; i < n * K; ++i) ++expert_count_[static_cast<size_t>(sel[i])];
  int32_t rows = 0;
  for (int64_t e = 0; e < X; ++e) {
    expert_offset_[e] = rows;
    expert_fill_[e] = 0;
    rows += expert_count_[e];
  }
  for (int64_t i = 0; i < n * K; ++i) sel_row_[i] = expert_offset_[sel[i]] + expert_fill_[sel[i]]++;
  // expert inputs: one token uses h itself; a batch gathers each pair's h row
  const bool gather = n > 1;
  if (gather)
    parallel_rows(pool_, n * K, 64, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        std::memcpy(moe_x_.data() + static_cast<int64_t>(sel_row_[i]) * E, h + (i / K) * E, static_cast<size_t>(E) * sizeof(float));
    });

  // g = Wgate_e x, u = Wup_e x for every active expert (one call)
  jobs_.clear();
  for (int64_t e = 0; e < X; ++e) {
    const int64_t cnt = expert_count_[e], off = expert_offset_[e];
    if (cnt == 0) continue;
    const float* xin = gather ? moe_x_.data() + off * E : h;
    jobs_.push_back({gate.mat(e), xin, E, cnt, moe_gate_.data() + off * F, F, &gate.kernels});
    jobs_.push_back({up.mat(e), xin, E, cnt, moe_up_.data() + off * F, F, &up.kernels});
  }
  ops::matmul(jobs_, pool_);

  // a = silu(g) * u
  parallel_rows(pool_, rows, 32, [&](int64_t r0, int64_t r1) {
    ops_.swiglu(moe_gate_.data() + r0 * F, moe_up_.data() + r0 * F, (r1 - r0) * F);
  });

  // y_e = Wdown_e a for every active expert (one call)
  jobs_.clear();
  for (int64_t e = 0; e < X; ++e) {
    const int64_t cnt = expert_count_[e], off = expert_offset_[e];
    if (cnt == 0) continue;
    jobs_.push_back({down.mat(e), moe_gate_.data() + off * F, F, cnt, moe_down_.data() + off * E, E, &down.kernels});
  }
  ops::matmul(jobs_, pool_);

  // x = x + sum_j w_j y_j, summed in slot order (built in place in the row of slot 0)
  parallel_rows(pool_, n, 16, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int32_t* row = sel_row_.data() + t * K;
      const float* w = wt + t * K;
      float* acc = moe_down_.data() + static_cast<int64_t>(row[0]) * E;
      for (int64_t i = 0; i < E; ++i) acc[i] *= w[0];
      for (int j = 1; j < K; ++j) ops::axpy(acc, w[j], moe_down_.data() + static_cast<int64_t>(row[j]) * E, E);
      ops::add(x + t * E, acc, E);
    }
  });
}

class CpuBackend final : public HostBackend {
 public:
  CpuBackend() : HostBackend(ops::Backend::Cpu) {}
  std::unique_ptr<KvStore> create_kv(const KvShape& shape) override { return std::make_unique<CpuKv>(shape); }
  std::unique_ptr<Stream> create_stream(const ModelConfig& c, const StreamOptions& o) override {
    return std::make_unique<CpuStream>(c, o, caps_);
  }
};

}  // namespace

// A weight of the mapped file as a host matrix (zero-copy) with its kernels bound for this device.
Matrix host_matrix(const gguf::TensorInfo& t, const ops::KernelPolicy& policy, const ops::DeviceCaps& caps) {
  Matrix m;
  m.view = ops::WeightView{t.type, t.data, t.ne[0], t.ne[1], t.row_bytes()};
  m.n_mat = t.ne[2];
  m.mat_stride = t.row_bytes() * static_cast<size_t>(t.ne[1]);
  m.kernels = ops::BoundMatmul::bind(policy, t.type, t.ne[0], t.ne[1], caps);
  return m;
}

std::shared_ptr<Backend> make_cpu_backend() { return std::make_shared<CpuBackend>(); }

}  // namespace tessera::engine
