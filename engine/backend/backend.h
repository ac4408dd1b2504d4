// The device interface the forward passes are written against. A Backend owns device memory and the
// model's weights (uploaded, and their kernels chosen, once at load); a Stream runs the ops of the
// forward pass on it, in order, until sync(). The forward code holds buffers but never touches their
// bytes, so the same forward runs on the CPU, the scalar reference, and (next) Vulkan and HIP.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "gguf/gguf.h"
#include "kernels/registry.h"

namespace tessera::engine {

struct ModelConfig;  // engine/model/model.h

// Device memory: activations, scratch, KV blocks. Backends derive their own kinds.
class Buffer {
 public:
  virtual ~Buffer() = default;
  size_t bytes() const { return bytes_; }

 protected:
  explicit Buffer(size_t bytes) : bytes_(bytes) {}
  size_t bytes_;
};

// A weight matrix, or a stack of n_mat expert matrices, as the backend holds it, with its matmul
// kernels chosen at load. `view` is matrix 0 in the file's own format (the mapped file on host backends).
struct Matrix {
  ops::WeightView view;
  int64_t n_mat = 1;        // experts in the stack
  size_t mat_stride = 0;    // bytes from one expert's matrix to the next
  ops::BoundMatmul kernels;
  std::shared_ptr<void> device;  // the backend's own copy or repacking (GPU backends), else null
  ops::WeightView mat(int64_t e) const {
    ops::WeightView w = view;
    w.data += static_cast<size_t>(e) * mat_stride;
    return w;
  }
};

// An f32 vector (norm weights, biases): host values plus the backend's copy when it needs one.
struct Vector {
  const float* host = nullptr;  // [n]
  int64_t n = 0;
  std::shared_ptr<void> device;
  explicit operator bool() const { return host != nullptr; }
};

// A token embedding table: rows are looked up, never multiplied.
struct Table {
  const gguf::TensorInfo* tensor = nullptr;  // {n_embd, n_vocab}
  std::shared_ptr<void> device;
};

// What one forward pass runs on: tokens of one or more sequences.
struct Batch {
  int64_t n_tokens = 0;
  const int32_t* tokens = nullptr;              // [n_tokens]
  const int32_t* pos = nullptr;                 // [n_tokens] position in its sequence
  const int32_t* const* block_table = nullptr;  // [n_tokens] KV block ids of its sequence
  const int32_t* out_rows = nullptr;            // [n_out] tokens whose logits are wanted
  int64_t n_out = 0;
  float* logits = nullptr;                      // host [n_out][n_vocab]
};

// KV storage of one context, in the backend's own layout: n_blocks blocks of ops::kKvBlock tokens per
// layer and KV head. Block ids are handed out by the engine (engine/kv/kv_cache.h).
class KvStore {
 public:
  virtual ~KvStore() = default;
  virtual uint64_t bytes() const = 0;
};

struct KvShape {
  int n_layer = 0, n_head_kv = 0, head_dim = 0, n_blocks = 0;
};

// One matrix product of a stream: y[r] = W x[r] for the first `rows` rows of x (-1: the batch's tokens).
struct MatmulCall {
  const Matrix* w = nullptr;
  const Buffer* x = nullptr;  // [rows][w.n_in]
  Buffer* y = nullptr;        // [rows][w.n_out]
  int64_t rows = -1;
};

// The op set of the forward passes. Shapes come from the model config the stream was made for; an op
// works on the current batch's tokens unless it says otherwise. Buffers hold f32 rows unless noted.
class Stream {
 public:
  virtual ~Stream() = default;

  // Makes the batch (ids, positions, block tables, output rows) the one the next ops run on.
  virtual void begin(const Batch& b) = 0;
  // x[t] = table[tokens[t]]  ([n_tokens][n_embd])
  virtual void embed(const Table& table, Buffer& x) = 0;
  // y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w over `rows` rows of w.n values (x and y may be one
  // buffer; QK-norm: n_tokens * n_head rows of head_dim)
  virtual void rmsnorm(const Buffer& x, Buffer& y, const Vector& w, int64_t rows) = 0;
  // RoPE in place on [n_tokens][n_head][head_dim] at each token's position, with the config's pairing
  // (rope_type: NEOX or NORM), frequency factors and linear scale
  virtual void rope(Buffer& x, int64_t n_head) = 0;
  // K and V rows ([n_tokens][n_head_kv * head_dim]) into the token's KV block slots of this layer
  virtual void kv_store(KvStore& kv, int layer, const Buffer& k, const Buffer& v) = 0;
  // Block dst of every layer and KV head becomes a copy of block src (copy-on-write of a shared block)
  virtual void kv_copy(KvStore& kv, int dst, int src) = 0;
  // out = softmax(q k^T / sqrt(head_dim), causal) v over the paged KV of each token's sequence
  virtual void attention(KvStore& kv, int layer, const Buffer& q, Buffer& out) = 0;
  // All calls in one go (e.g. q, k and v from the same input)
  virtual void matmul(std::span<const MatmulCall> calls) = 0;
  void matmul(const MatmulCall& call) { matmul(std::span<const MatmulCall>(&call, 1)); }
  // y[r] += b over `rows` rows of b.n values
  virtual void add_bias(Buffer& y, const Vector& b, int64_t rows) = 0;
  // y += x over the batch's rows of n values
  virtual void add(Buffer& y, const Buffer& x, int64_t n) = 0;
  // g = silu(g) * u over the batch's rows of n values
  virtual void swiglu(Buffer& g, const Buffer& u, int64_t n) = 0;
  // Router: p = softmax(logits) over n_expert, ids = the n_expert_used largest, w_j = p_j / sum(p_ids)
  // (ids: int32 [n_tokens][n_expert_used], w: [n_tokens][n_expert_used]).
  virtual void route(const Buffer& logits, Buffer& ids, Buffer& w) = 0;
  // x += sum_j w_j Wdown_ids_j(silu(Wgate_ids_j h) * Wup_ids_j h): the selected experts of each token,
  // grouped by expert on the device.
  virtual void moe(const Matrix& gate, const Matrix& up, const Matrix& down, const Buffer& h, const Buffer& ids,
                   const Buffer& w, Buffer& x) = 0;
  // out[i] = x[out_rows[i]] for the batch's output rows
  virtual void gather_out_rows(const Buffer& x, Buffer& out) = 0;
  // Host logits [n_out][n_vocab] = W h (+ bias) for the batch's n_out (gathered, normed) rows h.
  virtual void logits(const Matrix& w, const Vector& bias, const Buffer& h, float* host_logits) = 0;
  // Waits until every op issued so far has finished.
  virtual void sync() = 0;

  // Profiling (--profile): the forward pass says which layer the next ops belong to (-1: none, the
  // embedding and the output head); a stream that times its work reports it, given the model's
  // active weight bytes per token (Model::active_bytes_per_token). Others ignore both.
  virtual void set_layer(int layer) { (void)layer; }
  virtual std::string profile_report(int64_t n_layer, uint64_t active_bytes_per_token) const {
    (void)n_layer, (void)active_bytes_per_token;
    return {};
  }
};

struct StreamOptions {
  int n_threads = 2;
  int64_t n_batch = 512;  // most tokens of one batch
  // Kernel overrides for the stream's own ops (attention_f16, rmsnorm_f32, rope_neox_f32 / rope_norm_f32, swiglu_f32):
  // the model's policy (Model::kernel_policy()), applied once when the stream is made.
  ops::KernelPolicy kernels;
  bool profile = false;  // time every op (backends with device timers: vulkan)
};

class Backend {
 public:
  virtual ~Backend() = default;

  const ops::DeviceCaps& caps() const { return caps_; }
  ops::Backend kind() const { return caps_.backend; }
  std::string name() const { return std::string(ops::backend_name(caps_.backend)); }

  // Memory for n bytes (zeroed).
  virtual std::unique_ptr<Buffer> alloc(size_t bytes) = 0;
  // Weights at load: a matrix or expert stack of the file (kernels chosen with the policy), an f32
  // vector, an embedding table.
  virtual Matrix upload_matrix(const gguf::TensorInfo& t, const ops::KernelPolicy& policy) = 0;
  virtual Vector upload_vector(const float* values, int64_t n) = 0;
  virtual Table upload_table(const gguf::TensorInfo& t) = 0;
  virtual std::unique_ptr<KvStore> create_kv(const KvShape& shape) = 0;
  virtual std::unique_ptr<Stream> create_stream(const ModelConfig& config, const StreamOptions& opts) = 0;
  // Copies between host memory and a buffer (tests, host fallbacks); only while no stream has
  // unsynced work on the buffer.
  virtual void write(Buffer& b, const void* src, size_t bytes, size_t offset = 0) = 0;
  virtual void read(const Buffer& b, void* dst, size_t bytes, size_t offset = 0) = 0;

 protected:
  ops::DeviceCaps caps_;
};

// "cpu", "ref", "vulkan", "hip" or "hip-emu" (device: the index `tessera devices` lists, -1 the default; host backends
// ignore it); throws tessera::Error naming the ones of this build.
std::shared_ptr<Backend> make_backend(const std::string& name, int device = -1);
// The backends this build has: "cpu, ref[, vulkan][, hip, hip-emu]".
std::string backend_names();
// The Vulkan devices as `tessera devices` lists them (index, name, memory, cooperative matrices);
// throws tessera::Error saying why there are none (no Vulkan in this build, no loader, no device).
std::string vulkan_devices();
// The HIP devices the ROCm runtime lists; throws tessera::Error saying why there are none (no HIP in
// this build, no libamdhip64.so, no device).
std::string hip_devices();

}  // namespace tessera::engine
