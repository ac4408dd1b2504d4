// The `vulkan` backend's Stream: every op is a compute dispatch recorded into one command buffer,
// submitted at sync() (one submit per forward step, not per op), with a memory barrier after each
// dispatch. Descriptor sets come from a pool reset at each sync. Shaders: shaders/*.comp.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"
#include "engine/backend/device_batch.h"
#include "engine/backend/vulkan/vk_backend.h"
#include "engine/backend/vulkan/vk_shaders.h"
#include "engine/model/model.h"

namespace tessera::engine {

namespace {

using vk::fn;

// Where begin() puts the batch in the batch buffer (uint words; shaders/common/batch.glsl).
struct BatchLayout {
  uint32_t tokens = 0, pos = 0, tbl = 0, out = 0;
};

struct Grid {
  uint32_t x, y;
};
// n workgroups as x * y (x <= 65535, the smallest maximum Vulkan guarantees); shaders skip the excess.
Grid split(uint64_t n) {
  const uint64_t x = std::min<uint64_t>(std::max<uint64_t>(n, 1), 65535);
  return {static_cast<uint32_t>(x), static_cast<uint32_t>((n + x - 1) / x)};
}

uint32_t u32(int64_t v) { return static_cast<uint32_t>(v); }

// Bytes a dispatch reads (--profile): all of them, and the model's weights among them.
struct Reads {
  uint64_t total = 0, weights = 0;
};
Reads weights(uint64_t w, uint64_t other) { return {w + other, w}; }
Reads data(uint64_t n) { return {n, 0}; }
constexpr uint64_t kF = sizeof(float);

bool has_matmul_shader(GgmlType t) {
  switch (t) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16: case GgmlType::Q8_0: case GgmlType::Q4_0:
    case GgmlType::Q4_1: case GgmlType::Q5_0: case GgmlType::Q5_1: case GgmlType::IQ4_NL: case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K:
      return true;
    default: return false;
  }
}

// The batch matmul (rows >= 2; shaders/matmul_tiled.comp): on cooperative matrices where the device
// has a usable shape, else the twin on shared memory; TESSERA_VK_MATMUL=coopmat|tiled|rows forces one
// (rows: matmul.comp, one workgroup per weight row), for tests and A/B timing.
enum class MatmulPath { Rows, Tiled, Coopmat };
MatmulPath batch_matmul_path(const vk::DeviceInfo& d) {
  const char* e = std::getenv("TESSERA_VK_MATMUL");
  const std::string v = e ? e : "";
  if (v.empty() || v == "auto") return d.coop_m ? MatmulPath::Coopmat : MatmulPath::Tiled;
  if (v == "coopmat") {
    if (!d.coop_m) throw_error("vulkan: TESSERA_VK_MATMUL=coopmat, but {} has no usable cooperative matrix shape ({})", d.name, d.batch_matmul());
    return MatmulPath::Coopmat;
  }
  if (v == "tiled") return MatmulPath::Tiled;
  if (v == "rows") return MatmulPath::Rows;
  throw_error("vulkan: TESSERA_VK_MATMUL={}: expected auto, coopmat, tiled or rows", v);
}

constexpr uint32_t kSets = 2048;  // descriptor sets per pool (dispatches per submit); a longer step flushes midway

// --profile: a timestamp after every dispatch (and one at the start of each command buffer), read
// back after each submit; with barriers between dispatches, the difference of two neighbours is the
// device time of the later one. Counts, time and bytes read per shader, for decode steps (one token)
// and batches apart, per layer as the forward pass announces them (Stream::set_layer).
class Profile {
 public:
  explicit Profile(vk::Device& d) : d_(d), timed_(d.timestamp_bits() > 0 && d.timestamp_period() > 0) {
    if (!timed_) return;
    VkQueryPoolCreateInfo qi{VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
    qi.queryType = VK_QUERY_TYPE_TIMESTAMP;
    qi.queryCount = kSets + 1;
    vk::check(fn.vkCreateQueryPool(d_.dev(), &qi, nullptr, &pool_), "vkCreateQueryPool");
  }
  ~Profile() {
    if (pool_) fn.vkDestroyQueryPool(d_.dev(), pool_, nullptr);
  }
  Profile(const Profile&) = delete;
  Profile& operator=(const Profile&) = delete;

  void begin_step(int64_t n_tokens) {
    kind_ = n_tokens == 1 ? 0 : 1;
    ++k_[kind_].steps;
    k_[kind_].tokens += static_cast<uint64_t>(n_tokens);
  }
  void set_layer(int layer) { layer_ = layer; }
  // A command buffer begins: the timestamp every later one is measured from.
  void start(VkCommandBuffer cb) {
    if (!timed_) return;
    fn.vkCmdResetQueryPool(cb, pool_, 0, kSets + 1);
    fn.vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, pool_, 0);
  }
  void dispatched(VkCommandBuffer cb, const std::string& shader, Reads rd) {
    pending_.push_back({shader, kind_, layer_, rd});
    if (timed_) fn.vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, pool_, static_cast<uint32_t>(pending_.size()));
  }
  // After the submit finished: the times of its dispatches.
  void collect() {
    if (pending_.empty()) return;
    std::vector<uint64_t> ts(pending_.size() + 1);
    if (timed_)
      vk::check(fn.vkGetQueryPoolResults(d_.dev(), pool_, 0, static_cast<uint32_t>(ts.size()), ts.size() * 8, ts.data(), 8,
                                         VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT),
                "vkGetQueryPoolResults");
    const uint64_t mask = d_.timestamp_bits() >= 64 ? ~uint64_t{0} : (uint64_t{1} << d_.timestamp_bits()) - 1;
    for (size_t i = 0; i < pending_.size(); ++i) {
      const Rec& r = pending_[i];
      const double ns = static_cast<double>((ts[i + 1] - ts[i]) & mask) * d_.timestamp_period();
      Kind& k = k_[r.kind];
      Stat& st = k.shaders[r.shader];
      ++st.calls;
      st.ns += ns;
      st.bytes += r.rd.total;
      ++k.dispatches;
      k.ns += ns;
      k.bytes += r.rd.total;
      k.weights += r.rd.weights;
      if (r.layer >= 0) ++k.layers[r.layer];
      else ++k.outside;
    }
    pending_.clear();
  }
  std::string report(int64_t n_layer, uint64_t active) const;

 private:
  struct Rec {
    std::string shader;
    int kind, layer;
    Reads rd;
  };
  struct Stat {
    uint64_t calls = 0, bytes = 0;
    double ns = 0;
  };
  struct Kind {
    uint64_t steps = 0, tokens = 0, dispatches = 0, outside = 0, bytes = 0, weights = 0;
    double ns = 0;
    std::map<std::string, Stat> shaders;
    std::map<int, uint64_t> layers;  // dispatches of each layer
  };
  vk::Device& d_;
  const bool timed_;
  VkQueryPool pool_ = VK_NULL_HANDLE;
  int kind_ = 0, layer_ = -1;
  std::vector<Rec> pending_;
  Kind k_[2];  // decode steps (one token), batches
};

std::string mib(uint64_t b) { return fmt::format("{:.3f} MiB", static_cast<double>(b) / (1 << 20)); }

std::string Profile::report(int64_t n_layer, uint64_t active) const {
  std::string s = fmt::format("tessera: vulkan profile: {}; ", d_.info().name);
  s += timed_ ? fmt::format("timestamps: {} valid bits, {} ns per tick\n", d_.timestamp_bits(), d_.timestamp_period())
              : "no timestamps on its compute queue (times are 0)\n";
  for (int kind = 0; kind < 2; ++kind) {
    const Kind& k = k_[kind];
    if (k.steps == 0) continue;
    const double tok = static_cast<double>(k.tokens);
    uint64_t in_layers = 0, lo = UINT64_MAX, hi = 0;
    for (const auto& [l, n] : k.layers) in_layers += n, lo = std::min(lo, n), hi = std::max(hi, n);
    if (k.layers.empty()) lo = 0;
    s += fmt::format("tessera:   {}: {} steps, {} tokens, {} dispatches, {:.3f} ms on the device\n",
                     kind == 0 ? "decode (steps of one token)" : "batches", k.steps, k.tokens, k.dispatches, k.ns / 1e6);
    s += fmt::format("tessera:     dispatches per token: {:.2f} = {:.2f} per layer x {} layers (layers {:.2f}..{:.2f}) + {:.2f} outside the layers\n",
                     k.dispatches / tok, in_layers / tok / std::max<double>(1, static_cast<double>(n_layer)), k.layers.size(),
                     lo / tok, hi / tok, k.outside / tok);
    s += fmt::format("tessera:     bytes read per token: {} = {:.3f}x the model's active bytes ({}); weights {} = {:.3f}x; KV and activations {}\n",
                     mib(static_cast<uint64_t>(k.bytes / tok)), k.bytes / tok / static_cast<double>(active), mib(active),
                     mib(static_cast<uint64_t>(k.weights / tok)), k.weights / tok / static_cast<double>(active),
                     mib(static_cast<uint64_t>((k.bytes - k.weights) / tok)));
    s += fmt::format("tessera:     {:<24} {:>8} {:>10} {:>11} {:>9} {:>6} {:>12}\n", "shader", "calls", "per token", "device ms",
                     "us/call", "share", "MiB read");
    std::vector<std::pair<std::string, Stat>> rows(k.shaders.begin(), k.shaders.end());
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.ns > b.second.ns; });
    for (const auto& [name, st] : rows)
      s += fmt::format("tessera:     {:<24} {:>8} {:>10.2f} {:>11.3f} {:>9.1f} {:>5.1f}% {:>12.3f}\n", name, st.calls, st.calls / tok,
                       st.ns / 1e6, st.ns / 1e3 / static_cast<double>(st.calls), k.ns > 0 ? 100.0 * st.ns / k.ns : 0.0,
                       static_cast<double>(st.bytes) / (1 << 20));
  }
  return s;
}

vk::Buf& dev_of(const std::shared_ptr<void>& p, const char* what) {
  if (!p) throw_error("vulkan: {} was not uploaded to this backend", what);
  return *static_cast<vk::Buf*>(p.get());
}

class VulkanStream final : public Stream {
 public:
  VulkanStream(std::shared_ptr<vk::Device> d, const ModelConfig& c, bool profile)
      : hold_(std::move(d)), d_(*hold_), c_(c), mm_(batch_matmul_path(d_.info())) {
    // the gemv shaders' subgroup reductions (<= 16 subgroups in a workgroup of 64); the shared-memory
    // tree without (or with TESSERA_VULKAN_NO_SUBGROUPS set, to test it)
    sg_ = d_.info().subgroup_arith && d_.info().subgroup_size >= 4 && !std::getenv("TESSERA_VULKAN_NO_SUBGROUPS");
    if (profile) prof_ = std::make_unique<Profile>(d_);
    VkDescriptorPoolSize ps{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, kSets * vk::kBindings};
    VkDescriptorPoolCreateInfo pi{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
    pi.maxSets = kSets;
    pi.poolSizeCount = 1;
    pi.pPoolSizes = &ps;
    vk::check(fn.vkCreateDescriptorPool(d_.dev(), &pi, nullptr, &pool_), "vkCreateDescriptorPool");
    VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    ai.commandPool = d_.pool();
    ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    ai.commandBufferCount = 1;
    vk::check(fn.vkAllocateCommandBuffers(d_.dev(), &ai, &cb_), "vkAllocateCommandBuffers");
    dummy_ = d_.buffer(16);
    batch_ = d_.buffer(4096, true);
    rope_ = d_.buffer(4096, true);
    done_ = d_.buffer(16, true);  // gemv_norm_route's count of finished workgroups, 0 between dispatches
    std::memset(done_->map, 0, 16);
  }
  ~VulkanStream() override {
    // Work recorded but never synced is dropped, not submitted: an exception may have unwound the
    // buffers it names already.
    if (recording_) fn.vkEndCommandBuffer(cb_);
    prof_.reset();
    fn.vkFreeCommandBuffers(d_.dev(), d_.pool(), 1, &cb_);
    fn.vkDestroyDescriptorPool(d_.dev(), pool_, nullptr);
  }

  void begin(const Batch& b) override {
    sync();  // the batch buffer is rewritten below
    b_ = b;
    const int64_t n = b.n_tokens;
    if (prof_) prof_->begin_step(n);
    const std::vector<uint32_t> w = device_batch_words(b);
    lay_ = {0, u32(n), u32(2 * n), u32(3 * n)};
    put(batch_, w.data(), w.size() * 4);
    const std::vector<float> cs = rope_cos_sin(c_, b);
    put(rope_, cs.data(), cs.size() * 4);
  }

  void embed(const Table& table, Buffer& x) override {
    const gguf::TensorInfo& t = *table.tensor;
    for (int64_t i = 0; i < b_.n_tokens; ++i)
      if (b_.tokens[i] < 0 || b_.tokens[i] >= t.ne[1])
        throw_error("token id {} is out of range (vocabulary of {})", b_.tokens[i], t.ne[1]);
    check_type(t.type, "embedding table");
    const uint32_t pc[] = {u32(t.ne[0]), u32(static_cast<int64_t>(t.row_bytes())), lay_.tokens};
    dispatch("embed_" + std::string(type_name(t.type)), {&dev_of(table.device, "the embedding table"), batch_.get(), &vbuf(x)},
             pc, sizeof pc, {u32(b_.n_tokens), 1}, weights(uint64_t(b_.n_tokens) * t.row_bytes(), uint64_t(b_.n_tokens) * 4));
  }

  void rmsnorm(const Buffer& x, Buffer& y, const Vector& w, int64_t rows) override {
    if (rows <= 0) return;
    // qwen3's QK-norm (in place, rows of head_dim) waits for the rope of the same heads, which does it
    // (rope_qk_norm); anything else dispatches it first (settle)
    if (&x == &y && w.n == c_.head_dim && c_.head_dim <= 256 && rows % b_.n_tokens == 0) {
      qk_norms_.push_back({&y, w, rows});
      return;
    }
    // a decode row's norm waits for the matmul that reads it (gemv_norm); anything else settles it
    if (rows == 1 && b_.n_tokens == 1 && &x != &y && w.n <= 4096) {
      settle();
      norm_ = PendingNorm{&x, &y, w};
      return;
    }
    norm_now(x, y, w, rows);
  }

  void norm_now(const Buffer& x, Buffer& y, const Vector& w, int64_t rows) {
    struct {
      uint32_t n, rows;
      float eps;
    } pc{u32(w.n), u32(rows), static_cast<float>(c_.eps)};
    dispatch("rmsnorm", {&vbuf(x), &vbuf(y), &dev_of(w.device, "a norm weight")}, &pc, sizeof pc, split(static_cast<uint64_t>(rows)),
             weights(uint64_t(w.n) * kF, uint64_t(rows * w.n) * kF));
  }

  // Deferred to the next op: the kv_store of the same (k) heads takes it (rope_store); with a pending
  // QK-norm of these heads it is normed first (rope_qk_norm). A rope of other heads (q) before it waits
  // too and goes into the same dispatch (rope_both_store).
  void rope(Buffer& x, int64_t n_head) override {
    std::optional<PendingRope> q;
    if (pend_rope_ && !pend_rope_q_ && pend_rope_->x != &x) {
      q = pend_rope_;
      pend_rope_.reset();
    }
    std::optional<Vector> norm;
    const auto on_x = [&](const QkNorm& n) { return n.x == &x; };
    for (auto it = qk_norms_.begin(); it != qk_norms_.end(); ++it)
      if (it->x == &x && it->rows == b_.n_tokens * n_head && std::count_if(qk_norms_.begin(), qk_norms_.end(), on_x) == 1) {
        norm = it->w;
        qk_norms_.erase(it);  // the others touch other buffers: they may wait on
        break;
      }
    if (norm) settle(false);  // the other QK-norms may wait on
    else settle();
    pend_rope_q_ = q;
    pend_rope_ = PendingRope{&x, n_head, norm};
  }

  struct PendingRope {
    Buffer* x;
    int64_t n_head;
    std::optional<Vector> norm;
  };
  // The deferred rope, alone or with the kv_store of its heads (kv set).
  // The deferred ropes (q's first), alone or with the kv_store of k's heads (kv set): one dispatch for
  // both where their QK-norms agree.
  void emit_rope(VkKv* kv = nullptr, int layer = 0, vk::Buf* v = nullptr) {
    std::optional<PendingRope> q;
    q.swap(pend_rope_q_);
    if (q && !(kv && pend_rope_ && q->norm.has_value() == pend_rope_->norm.has_value())) {
      emit_one_rope(*q, nullptr, 0, nullptr, nullptr);
      q.reset();
    }
    if (!pend_rope_) return;
    const PendingRope r = *pend_rope_;
    pend_rope_.reset();
    emit_one_rope(r, kv, layer, v, q ? &*q : nullptr);
  }
  void emit_one_rope(const PendingRope& r, VkKv* kv, int layer, vk::Buf* v, const PendingRope* q) {
    struct {
      uint32_t n_head, head_dim, neox;
      float eps;
      uint32_t n_blocks, layer, off_pos, off_tbl, n_head_q;
    } pc{u32(r.n_head), u32(c_.head_dim), c_.rope_type == ops::RopeType::Neox ? 1u : 0u, static_cast<float>(c_.eps),
         kv ? u32(kv->shape.n_blocks) : 0u, static_cast<uint32_t>(layer), lay_.pos, lay_.tbl, q ? u32(q->n_head) : 0u};
    const int64_t n_head = r.n_head + (q ? q->n_head : 0);
    const uint64_t heads = uint64_t(b_.n_tokens) * n_head * c_.head_dim;
    Reads rd = data((heads + uint64_t(b_.n_tokens) * c_.head_dim) * kF);  // x, and cos/sin
    if (r.norm) rd = weights(uint64_t(r.norm->n) * kF * (q ? 2 : 1), rd.total);
    if (kv) rd.total += uint64_t(b_.n_tokens) * r.n_head * c_.head_dim * kF;  // v
    vk::Buf* w = r.norm ? &dev_of(r.norm->device, "a norm weight") : dummy_.get();
    const std::string name = std::string(r.norm ? "rope_qk_norm" : "rope") + (q ? "_both" : "") + (kv ? "_store" : "");
    const Grid g{u32(n_head), u32(b_.n_tokens)};
    if (q)
      dispatch(name, {&vbuf(*r.x), rope_.get(), w, v, batch_.get(), kv->k.get(), kv->v.get(), &vbuf(*q->x),
                      q->norm ? &dev_of(q->norm->device, "a norm weight") : dummy_.get()},
               &pc, sizeof pc, g, rd, 1, false);
    else if (kv)
      dispatch(name, {&vbuf(*r.x), rope_.get(), w, v, batch_.get(), kv->k.get(), kv->v.get()}, &pc, sizeof pc, g, rd, 1, false);
    else
      dispatch(name, {&vbuf(*r.x), rope_.get(), w}, &pc, sizeof pc, g, rd, 1, false);
  }

  void kv_store(KvStore& kv, int layer, const Buffer& k, const Buffer& v) override {
    auto& s = static_cast<VkKv&>(kv);
    if (pend_rope_ && pend_rope_->x == &k && pend_rope_->n_head == s.shape.n_head_kv && s.shape.head_dim == c_.head_dim) {
      emit_rope(&s, layer, &vbuf(v));
      return;
    }
    const uint32_t pairs = u32(s.shape.n_head_kv * s.shape.head_dim / 2);
    const uint32_t pc[] = {u32(b_.n_tokens), u32(s.shape.n_head_kv), u32(s.shape.head_dim), u32(s.shape.n_blocks),
                           static_cast<uint32_t>(layer), lay_.pos, lay_.tbl};
    dispatch("kv_store", {&vbuf(k), &vbuf(v), batch_.get(), s.k.get(), s.v.get()}, pc, sizeof pc,
             {(pairs + 63) / 64, u32(b_.n_tokens)}, data(uint64_t(b_.n_tokens) * pairs * 4 * kF));
  }

  void kv_copy(KvStore& kv, int dst, int src) override {
    settle();
    auto& s = static_cast<VkKv&>(kv);
    const size_t blk = static_cast<size_t>(ops::kKvBlock) * s.shape.n_head_kv * s.shape.head_dim * 2;
    std::vector<VkBufferCopy> regions;
    for (int l = 0; l < s.shape.n_layer; ++l)
      regions.push_back({(static_cast<size_t>(l) * s.shape.n_blocks + src) * blk,
                         (static_cast<size_t>(l) * s.shape.n_blocks + dst) * blk, blk});
    record();
    fn.vkCmdCopyBuffer(cb_, s.k->buf, s.k->buf, u32(static_cast<int64_t>(regions.size())), regions.data());
    fn.vkCmdCopyBuffer(cb_, s.v->buf, s.v->buf, u32(static_cast<int64_t>(regions.size())), regions.data());
    barrier();
  }

  void attention(KvStore& kv, int layer, const Buffer& q, Buffer& out) override {
    auto& s = static_cast<VkKv&>(kv);
    struct {
      uint32_t n_head, n_head_kv, head_dim, n_blocks, layer, off_pos, off_tbl;
      float scale;
    } pc{u32(c_.n_head), u32(s.shape.n_head_kv), u32(s.shape.head_dim), u32(s.shape.n_blocks), static_cast<uint32_t>(layer),
         lay_.pos, lay_.tbl, static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.shape.head_dim)))};
    uint64_t keys = 0;  // each token reads its q and the f16 K and V of positions 0..pos
    for (int64_t t = 0; t < b_.n_tokens; ++t) keys += static_cast<uint64_t>(b_.pos[t]) + 1;
    const uint64_t kv_row = uint64_t(s.shape.n_head_kv) * s.shape.head_dim * 2;
    dispatch("attention", {&vbuf(q), batch_.get(), s.k.get(), s.v.get(), &vbuf(out)}, &pc, sizeof pc,
             {u32(c_.n_head), u32(b_.n_tokens)}, data(keys * 2 * kv_row + uint64_t(b_.n_tokens) * c_.n_head * c_.head_dim * kF));
  }

  void matmul(std::span<const MatmulCall> calls) override {
    if (qkv(calls)) return;
    const Buffer* last_x = nullptr;  // q, k and v often share x: quantize it once
    GgmlType last_type = GgmlType::F32;
    vk::Buf* xq = nullptr;
    for (const MatmulCall& c : calls) {
      const int64_t rows = c.rows < 0 ? b_.n_tokens : c.rows;
      if (rows == 0) continue;
      if (rows == 1 && fused_act_ok(c.w->view.type, c.w->view.n_in)) {  // decode: quantized in the shader
        if (norm_ && norm_->y == c.x && norm_->w.n == c.w->view.n_in) {   // and normed there
          const PendingNorm n = *norm_;
          norm_.reset();
          if (calls.size() == 1) {  // may take the route after it (gemv_norm_route)
            settle();
            gemv_ = PendingGemv{c.w, c.x, c.y, n};
            continue;
          }
          gemv1(*c.w, vbuf(*n.x), vbuf(*c.y), &n);
        } else if (calls.size() == 1) {  // may take the residual add after it
          settle();
          gemv_ = PendingGemv{c.w, c.x, c.y};
        } else {
          gemv1(*c.w, vbuf(*c.x), vbuf(*c.y));
        }
        continue;
      }
      const ops::ActType act = ops::activation_type_for(c.w->view.type);
      if (act == ops::ActType::F32) {
        xq = &vbuf(*c.x);
      } else if (c.x != last_x || ops::activation_type_for(last_type) != act) {
        xq = quantize(act, vbuf(*c.x), c.w->view.n_in, rows);
      }
      last_x = c.x;
      last_type = c.w->view.type;
      gemv(*c.w, *xq, vbuf(*c.y), rows);
    }
  }

  void add_bias(Buffer& y, const Vector& b, int64_t rows) override {
    elementwise("add_bias", vbuf(y), dev_of(b.device, "a bias"), rows * b.n, b.n, weights(uint64_t(b.n) * kF, uint64_t(rows * b.n) * kF));
  }
  void add(Buffer& y, const Buffer& x, int64_t n) override {
    if (gemv_ && !gemv_->norm && gemv_->y == &x && b_.n_tokens == 1 && n == gemv_->w->view.n_out) {  // y += W x' in one dispatch
      const PendingGemv g = *gemv_;
      gemv_.reset();
      gemv1(*g.w, vbuf(*g.x), vbuf(*g.y), nullptr, &vbuf(y));
      return;
    }
    elementwise("add", vbuf(y), vbuf(x), b_.n_tokens * n, n, data(uint64_t(b_.n_tokens * n) * 2 * kF));
  }
  void swiglu(Buffer& g, const Buffer& u, int64_t n) override {
    elementwise("swiglu", vbuf(g), vbuf(u), b_.n_tokens * n, n, data(uint64_t(b_.n_tokens * n) * 2 * kF));
  }

  void route(const Buffer& logits, Buffer& ids, Buffer& w) override {
    if (c_.n_expert_used > 64 || c_.n_expert_used > c_.n_expert)
      throw_error("vulkan: route of {} of {} experts (at most 64 used)", c_.n_expert_used, c_.n_expert);
    if (gemv_ && gemv_->norm && gemv_->y == &logits && b_.n_tokens == 1 && gemv_->w->view.n_out == c_.n_expert) {
      const std::string name = "gemv_norm_route_" + std::string(type_name(gemv_->w->view.type));
      // the router's GEMV picks the experts too (route.glsl's arrays: < 1 KiB more workgroup memory)
      if (!vk::find_shader(name).empty() && d_.info().max_shared_bytes >= kFusedShared + 1024) {
        const PendingGemv g = *gemv_;
        gemv_.reset();
        const Matrix& m = *g.w;
        struct {
          uint32_t n_in, n_out, row_bytes;
          float eps;
          uint32_t k;
        } pc{u32(m.view.n_in), u32(m.view.n_out), u32(static_cast<int64_t>(m.view.row_bytes)), static_cast<float>(c_.eps),
             u32(c_.n_expert_used)};
        const uint64_t wb = uint64_t(m.view.n_out) * m.view.row_bytes, xb = uint64_t(m.view.n_in) * kF;
        dispatch(sg_variant(name), {&dev_of(m.device, "a weight"), &vbuf(*g.norm->x), &vbuf(*g.y), &dev_of(g.norm->w.device, "a norm weight"),
                        &vbuf(*g.norm->y), &vbuf(ids), &vbuf(w), done_.get()},
                 &pc, sizeof pc, split(static_cast<uint64_t>((m.view.n_out + 3) / 4)),
                 weights(wb + xb, xb + uint64_t(m.view.n_out) * kF));
        return;
      }
    }
    const uint32_t pc[] = {u32(c_.n_expert), u32(c_.n_expert_used)};
    dispatch("route", {&vbuf(logits), &vbuf(ids), &vbuf(w)}, pc, sizeof pc, {u32(b_.n_tokens), 1},
             data(uint64_t(b_.n_tokens * c_.n_expert) * kF));
  }

  // The routed experts of every token, fused (shaders/moe.comp): gate, up and silu(g) * u of every
  // (token, slot) pair in one dispatch (gate and up of one type; else apart, then swiglu), then down of
  // each token's pairs, weighted and added to x, in another. Expert ids are read on the device; the
  // fused shaders quantize the activations they read themselves.
  void moe(const Matrix& gate, const Matrix& up, const Matrix& down, const Buffer& h, const Buffer& ids,
           const Buffer& w, Buffer& x) override {
    const int64_t n = b_.n_tokens, K = c_.n_expert_used, pairs = n * K, E = down.view.n_out, F = gate.view.n_out;
    if (n == 0) return;
    if (n >= 2 && mm_ != MatmulPath::Rows) return moe_tiled(gate, up, down, h, ids, w, x);  // batches: grouped by expert
    check_type(gate.view.type, "an expert weight");
    check_type(down.view.type, "an expert weight");
    check_fused_act(down.view.type, F);
    vk::Buf& g = scratch(static_cast<size_t>(pairs * F) * sizeof(float));
    if (gate.view.type == up.view.type && fused_act_ok(gate.view.type, E)) {
      const uint32_t pc[] = {u32(E), u32(F), u32(static_cast<int64_t>(gate.view.row_bytes)), u32(static_cast<int64_t>(gate.mat_stride)),
                             u32(K)};
      dispatch(sg_variant("moe_gate_up_" + std::string(type_name(gate.view.type))),
               {&dev_of(gate.device, "an expert stack"), &vbuf(h), &g, &vbuf(ids), &dev_of(up.device, "an expert stack")}, pc, sizeof pc,
               split(static_cast<uint64_t>(F)),
               weights(2 * uint64_t(pairs * F) * gate.view.row_bytes, uint64_t(pairs) * (E + 1) * sizeof(float)), u32(pairs));
    } else {
      vk::Buf& u = scratch(static_cast<size_t>(pairs * F) * sizeof(float));
      vk::Buf* hq = activations(gate, vbuf(h), n);
      moe_gemv(gate, *hq, g, vbuf(ids), pairs, K);
      if (ops::activation_type_for(up.view.type) != ops::activation_type_for(gate.view.type)) hq = activations(up, vbuf(h), n);
      moe_gemv(up, *hq, u, vbuf(ids), pairs, K);
      elementwise("swiglu", g, u, pairs * F, F, data(uint64_t(pairs * F) * 2 * sizeof(float)));
    }
    const uint32_t pc[] = {u32(F), u32(E), u32(static_cast<int64_t>(down.view.row_bytes)), u32(static_cast<int64_t>(down.mat_stride)),
                           u32(K)};
    // each (token, slot) pair reads its expert's matrix (distinct experts for one token: exact in decode)
    dispatch(sg_variant("moe_down_" + std::string(type_name(down.view.type))),
             {&dev_of(down.device, "an expert stack"), &g, &vbuf(x), &vbuf(ids), &vbuf(w)}, pc, sizeof pc,
             split(static_cast<uint64_t>(E)),
             weights(uint64_t(pairs * E) * down.view.row_bytes, uint64_t(pairs) * (F + 2) * sizeof(float) + uint64_t(n * E) * sizeof(float)),
             u32(n));
  }

  void gather_out_rows(const Buffer& x, Buffer& out) override {
    if (b_.n_out == 0) return;
    const uint32_t pc[] = {u32(c_.n_embd), lay_.out};
    dispatch("gather", {&vbuf(x), batch_.get(), &vbuf(out)}, pc, sizeof pc, {1, u32(b_.n_out)},
             data(uint64_t(b_.n_out * c_.n_embd) * kF));
  }

  void logits(const Matrix& w, const Vector& bias, const Buffer& h, float* host) override {
    if (b_.n_out == 0) return;
    const size_t n = static_cast<size_t>(b_.n_out * w.view.n_out);
    std::shared_ptr<vk::Buf> out = d_.buffer(n * sizeof(float), true);
    if (b_.n_out == 1 && fused_act_ok(w.view.type, w.view.n_in)) {
      gemv1(w, vbuf(h), *out);
    } else {
      const ops::ActType act = ops::activation_type_for(w.view.type);
      vk::Buf* x = act == ops::ActType::F32 ? &vbuf(h) : quantize(act, vbuf(h), w.view.n_in, b_.n_out);
      gemv(w, *x, *out, b_.n_out);
    }
    if (bias)
      elementwise("add_bias", *out, dev_of(bias.device, "the output bias"), static_cast<int64_t>(n), bias.n,
                  weights(uint64_t(bias.n) * kF, n * kF));
    after_sync_.push_back({out, host, n * sizeof(float)});
  }

  void set_layer(int layer) override {
    if (prof_) prof_->set_layer(layer);
  }
  std::string profile_report(int64_t n_layer, uint64_t active_bytes_per_token) const override {
    if (!prof_) return std::string();
    const char* path = mm_ == MatmulPath::Rows ? "one workgroup per weight row (matmul.comp, TESSERA_VK_MATMUL=rows)"
                       : mm_ == MatmulPath::Tiled ? "tiled on shared memory, f32 (32x32x32 tiles)"
                                                  : nullptr;
    return prof_->report(n_layer, active_bytes_per_token) +
           fmt::format("tessera:   batch matmul: {}\n", path ? std::string(path) : d_.info().batch_matmul());
  }

  void sync() override {
    flush();
    scratch_used_ = 0;  // not at a mid-step flush: a quantized x may still be reused
    for (const HostCopy& c : after_sync_) std::memcpy(c.dst, c.src->map, c.bytes);
    after_sync_.clear();
  }

 private:
  struct HostCopy {
    std::shared_ptr<vk::Buf> src;
    float* dst;
    size_t bytes;
  };

  static void check_type(GgmlType t, const char* what) {
    if (!has_matmul_shader(t))
      throw_error("vulkan: {} of type {} has no shader yet (supported: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 iq4_nl q4_K q5_K q6_K)",
                  what, type_name(t));
  }

  // Rows a fused shader quantizes in shared memory (shaders/common/act_shared.glsl): at most 4096
  // values, whole blocks of its activation type.
  static int64_t act_block(GgmlType t) {
    const ops::ActType act = ops::activation_type_for(t);
    return act == ops::ActType::Q8_K ? 256 : act == ops::ActType::Q8_0 || act == ops::ActType::Q8_1 ? 32 : 1;
  }
  // shared memory of the fused shaders: a row of 4096 floats, the block scales, the reductions (22.25 KiB)
  static constexpr uint32_t kFusedShared = 23 * 1024;
  bool fused_act_ok(GgmlType t, int64_t n_in) const {
    return has_matmul_shader(t) && n_in <= 4096 && n_in % act_block(t) == 0 && d_.info().max_shared_bytes >= kFusedShared;
  }
  void check_fused_act(GgmlType t, int64_t n_in) const {
    if (!fused_act_ok(t, n_in))
      throw_error("vulkan: the fused MoE shaders take rows of at most 4096 values in whole blocks of {} ({}: {}) and {} bytes "
                  "of workgroup memory (this device: {})", act_block(t), type_name(t), n_in, kFusedShared,
                  d_.info().max_shared_bytes);
  }

  // y[r] = W x[r] for `rows` rows of x (f32, already as the weight type's activations).
  void gemv(const Matrix& w, vk::Buf& x, vk::Buf& y, int64_t rows) {
    check_type(w.view.type, "a weight");
    if (rows >= 2 && mm_ != MatmulPath::Rows) {
      tiled(w, x, y, rows);
      return;
    }
    const uint32_t pc[] = {u32(w.view.n_in), u32(w.view.n_out), u32(rows), u32(static_cast<int64_t>(w.view.row_bytes)), 0,
                           u32(w.view.n_in), u32(w.view.n_out), 0, 1};
    dispatch("matmul_" + std::string(type_name(w.view.type)), {&dev_of(w.device, "a weight"), &x, &y}, pc, sizeof pc,
             split(static_cast<uint64_t>(w.view.n_out)), weights(uint64_t(w.view.n_out) * w.view.row_bytes, uint64_t(rows * w.view.n_in) * kF));
  }

  // The batch matmul in tiles (shaders/matmul_tiled.comp), on cooperative matrices or shared memory.
  void tiled(const Matrix& w, vk::Buf& x, vk::Buf& y, int64_t rows) {
    const vk::DeviceInfo& i = d_.info();
    const bool coop = mm_ == MatmulPath::Coopmat;
    const uint32_t bm = coop ? 4 * i.coop_m : 32, bn = coop ? 4 * i.coop_n : 32;
    const uint64_t blocks = (static_cast<uint64_t>(w.view.n_out) + bm - 1) / bm;
    if (blocks > 65535) throw_error("vulkan: a matmul of {} rows is too many for one dispatch", w.view.n_out);
    const uint32_t pc[] = {u32(w.view.n_in), u32(w.view.n_out), u32(rows), u32(static_cast<int64_t>(w.view.row_bytes)), 0,
                           u32(w.view.n_in), u32(w.view.n_out), 0, 1};
    const uint32_t spec[] = {i.coop_m, i.coop_n, i.coop_k, 4 * i.max_subgroup_size};
    dispatch(std::string(coop ? "matmul_coop_" : "matmul_tiled_") + std::string(type_name(w.view.type)), {&dev_of(w.device, "a weight"), &x, &y},
             pc, sizeof pc, {u32(static_cast<int64_t>(blocks)), u32((rows + bn - 1) / bn)},
             weights(uint64_t(w.view.n_out) * w.view.row_bytes, uint64_t(rows * w.view.n_in) * kF), 1, true,
             coop ? std::span<const uint32_t>(spec) : std::span<const uint32_t>());
  }
  // The same grouped by expert (workgroup z: expert e, over the pairs routed to it): y[q] = W_ids[q] x[q / x_div].
  void tiled_moe(const Matrix& w, vk::Buf& x, vk::Buf& y, vk::Buf& ids, int64_t pairs, int64_t x_div) {
    check_type(w.view.type, "an expert weight");
    const vk::DeviceInfo& i = d_.info();
    const bool coop = mm_ == MatmulPath::Coopmat;
    const uint32_t bm = coop ? 4 * i.coop_m : 32;
    const uint32_t pc[] = {u32(w.view.n_in), u32(w.view.n_out), u32(pairs), u32(static_cast<int64_t>(w.view.row_bytes)), 0,
                           u32(w.view.n_in), u32(w.view.n_out), u32(static_cast<int64_t>(w.mat_stride)), u32(x_div)};
    const uint32_t spec[] = {i.coop_m, i.coop_n, i.coop_k, 4 * i.max_subgroup_size};
    // each pair's expert rows are read (distinct experts per token); shared experts are read once per tile
    dispatch(std::string(coop ? "matmul_moe_coop_" : "matmul_moe_tiled_") + std::string(type_name(w.view.type)),
             {&dev_of(w.device, "an expert stack"), &x, &y, &ids}, pc, sizeof pc, {u32((w.view.n_out + bm - 1) / bm), 1},
             weights(uint64_t(pairs * w.view.n_out) * w.view.row_bytes, uint64_t(pairs) * (w.view.n_in + 1) * kF), u32(c_.n_expert), true,
             coop ? std::span<const uint32_t>(spec) : std::span<const uint32_t>());
  }
  // A batch's routed experts on tiles grouped by expert: gate and up, swiglu, down, then each token's
  // pairs weighted and added to x (moe_sum). The activations are quantized by quantize.comp as for
  // any matmul (the fused decode shaders do it in shared memory).
  void moe_tiled(const Matrix& gate, const Matrix& up, const Matrix& down, const Buffer& h, const Buffer& ids, const Buffer& w,
                 Buffer& x) {
    const int64_t n = b_.n_tokens, K = c_.n_expert_used, pairs = n * K, E = down.view.n_out, F = gate.view.n_out;
    if (c_.n_expert > 65535) throw_error("vulkan: {} experts are too many for one dispatch", c_.n_expert);
    vk::Buf& g = scratch(static_cast<size_t>(pairs * F) * sizeof(float));
    vk::Buf& u = scratch(static_cast<size_t>(pairs * F) * sizeof(float));
    vk::Buf* hq = activations(gate, vbuf(h), n);
    tiled_moe(gate, *hq, g, vbuf(ids), pairs, K);
    if (ops::activation_type_for(up.view.type) != ops::activation_type_for(gate.view.type)) hq = activations(up, vbuf(h), n);
    tiled_moe(up, *hq, u, vbuf(ids), pairs, K);
    elementwise("swiglu", g, u, pairs * F, F, data(uint64_t(pairs * F) * 2 * sizeof(float)));
    vk::Buf* gq = activations(down, g, pairs);
    vk::Buf& d = scratch(static_cast<size_t>(pairs * E) * sizeof(float));
    tiled_moe(down, *gq, d, vbuf(ids), pairs, 1);
    const uint32_t pc[] = {u32(E), u32(K)};
    dispatch("moe_sum", {&d, &vbuf(w), &vbuf(x)}, pc, sizeof pc, {u32((E + 63) / 64), u32(n)},
             data(uint64_t(pairs) * (E + 1) * sizeof(float) + uint64_t(n * E) * sizeof(float)));
  }

  // y = W x for one row of x (f32; gemv.comp quantizes it as the weight type wants), 4 rows a workgroup;
  // norm: x is first rmsnorm'ed (written to norm->y too); res: res += y as well.
  struct PendingNorm {
    const Buffer* x;
    Buffer* y;
    Vector w;
  };
  void gemv1(const Matrix& w, vk::Buf& x, vk::Buf& y, const PendingNorm* norm = nullptr, vk::Buf* res = nullptr) {
    struct {
      uint32_t n_in, n_out, row_bytes;
      float eps;
    } pc{u32(w.view.n_in), u32(w.view.n_out), u32(static_cast<int64_t>(w.view.row_bytes)), static_cast<float>(c_.eps)};
    const std::string t(type_name(w.view.type));
    const uint64_t wb = uint64_t(w.view.n_out) * w.view.row_bytes, xb = uint64_t(w.view.n_in) * kF;
    const Grid g = split(static_cast<uint64_t>((w.view.n_out + 3) / 4));
    vk::Buf& wd = dev_of(w.device, "a weight");
    if (norm)
      dispatch(sg_variant("gemv_norm_" + t), {&wd, &x, &y, &dev_of(norm->w.device, "a norm weight"), &vbuf(*norm->y)}, &pc, sizeof pc, g,
               weights(wb + xb, xb));
    else if (res)
      dispatch(sg_variant("gemv_add_" + t), {&wd, &x, &y, res}, &pc, sizeof pc, g, weights(wb, xb + uint64_t(w.view.n_out) * kF));
    else
      dispatch(sg_variant("gemv_" + t), {&wd, &x, &y}, &pc, sizeof pc, g, weights(wb, xb));
  }
  // A gemv or moe shader's name with subgroup reductions where the device has them (every gemv and moe
  // variant has its _sg twin: shaders/variants.txt).
  std::string sg_variant(std::string name) const { return sg_ ? name + "_sg" : name; }

  // A decode gemv waiting for the add of its output (gemv_add) or, normed, for the route of its
  // output (gemv_norm_route); anything else settles it.
  struct PendingGemv {
    const Matrix* w;
    const Buffer* x;
    Buffer* y;
    std::optional<PendingNorm> norm;
  };

  // q, k and v of one normed decode row in one dispatch (gemv_qkv_*), where a variant has their types.
  bool qkv(std::span<const MatmulCall> calls) {
    if (calls.size() != 3 || b_.n_tokens != 1 || !norm_) return false;
    const Matrix &q = *calls[0].w, &k = *calls[1].w, &v = *calls[2].w;
    for (const MatmulCall& c : calls)
      if ((c.rows >= 0 && c.rows != 1) || c.x != norm_->y || c.w->view.n_in != norm_->w.n || !fused_act_ok(c.w->view.type, c.w->view.n_in))
        return false;
    if (k.view.type != q.view.type) return false;
    std::string name = "gemv_qkv_" + std::string(type_name(q.view.type));
    if (v.view.type != q.view.type) name += "_" + std::string(type_name(v.view.type));
    if (vk::find_shader(name).empty()) return false;
    const PendingNorm n = *norm_;
    norm_.reset();
    struct {
      uint32_t n_in, n_out, row_bytes;
      float eps;
      uint32_t n_out_k, row_bytes_k, n_out_v, row_bytes_v;
    } pc{u32(q.view.n_in), u32(q.view.n_out), u32(static_cast<int64_t>(q.view.row_bytes)), static_cast<float>(c_.eps),
         u32(k.view.n_out), u32(static_cast<int64_t>(k.view.row_bytes)), u32(v.view.n_out), u32(static_cast<int64_t>(v.view.row_bytes))};
    uint64_t wb = 0, groups = 0;
    for (const Matrix* m : {&q, &k, &v}) {
      wb += uint64_t(m->view.n_out) * m->view.row_bytes;
      groups += uint64_t(m->view.n_out + 3) / 4;
    }
    const uint64_t xb = uint64_t(q.view.n_in) * kF;
    dispatch(sg_variant(name), {&dev_of(q.device, "a weight"), &vbuf(*n.x), &vbuf(*calls[0].y), &dev_of(n.w.device, "a norm weight"), &vbuf(*n.y),
                    &dev_of(k.device, "a weight"), &vbuf(*calls[1].y), &dev_of(v.device, "a weight"), &vbuf(*calls[2].y)},
             &pc, sizeof pc, split(groups), weights(wb + xb, xb));
    return true;
  }

  // Expert matrices of a stack for `pairs` (token, slot) pairs: y[z] = W_ids[z] x[z / x_div].
  void moe_gemv(const Matrix& w, vk::Buf& x, vk::Buf& y, vk::Buf& ids, int64_t pairs, int64_t x_div) {
    check_type(w.view.type, "an expert weight");
    const uint32_t pc[] = {u32(w.view.n_in), u32(w.view.n_out), 1, u32(static_cast<int64_t>(w.view.row_bytes)), 0,
                           u32(w.view.n_in), u32(w.view.n_out), u32(static_cast<int64_t>(w.mat_stride)), u32(x_div)};
    const Grid g = split(static_cast<uint64_t>(w.view.n_out));
    // each (token, slot) pair reads its expert's matrix (distinct experts for one token: exact in decode)
    dispatch("matmul_moe_" + std::string(type_name(w.view.type)), {&dev_of(w.device, "an expert stack"), &x, &y, &ids}, pc,
             sizeof pc, g, weights(uint64_t(pairs * w.view.n_out) * w.view.row_bytes, uint64_t(pairs) * (w.view.n_in + 1) * kF), u32(pairs));
  }

  // x's `rows` rows as the activations w's type wants (x itself for f32 weights).
  vk::Buf* activations(const Matrix& w, vk::Buf& x, int64_t rows) {
    const ops::ActType act = ops::activation_type_for(w.view.type);
    return act == ops::ActType::F32 ? &x : quantize(act, x, w.view.n_in, rows);
  }

  // x's first `rows` rows of n_in values as the activations of this type (shaders/quantize.comp).
  vk::Buf* quantize(ops::ActType act, vk::Buf& x, int64_t n_in, int64_t rows) {
    const int64_t block = act == ops::ActType::Q8_K ? 256 : 32;
    const bool q8 = act == ops::ActType::Q8_0 || act == ops::ActType::Q8_K;
    if (q8 && n_in % block)
      throw_error("vulkan: rows of {} values cannot be quantized to {} (blocks of {})", n_in, ops::act_type_name(act), block);
    vk::Buf& out = scratch(static_cast<size_t>(rows * n_in) * sizeof(float));
    const uint32_t pc[] = {u32(n_in), u32(n_in)};
    dispatch("quantize_" + std::string(ops::act_type_name(act)), {&x, &out}, pc, sizeof pc,
             {u32((n_in + block - 1) / block), u32(rows)}, data(uint64_t(rows * n_in) * kF));
    return &out;
  }

  void elementwise(const char* op, vk::Buf& y, vk::Buf& x, int64_t n, int64_t bn, Reads rd) {
    if (n <= 0) return;
    const uint32_t pc[] = {u32(n), u32(bn)};
    dispatch(op, {&y, &x}, pc, sizeof pc, split(static_cast<uint64_t>((n + 255) / 256)), rd);
  }

  // A scratch buffer of at least n bytes for this step (reused after the next sync).
  vk::Buf& scratch(size_t n) {
    if (scratch_used_ == scratch_.size() || scratch_[scratch_used_]->bytes < n) {
      if (scratch_used_ < scratch_.size()) keep_.push_back(scratch_[scratch_used_]);  // still used by recorded work
      std::shared_ptr<vk::Buf> b = d_.buffer(n);
      if (scratch_used_ == scratch_.size()) scratch_.push_back(b);
      else scratch_[scratch_used_] = b;
    }
    return *scratch_[scratch_used_++];
  }

  // Host data into a host-visible buffer, grown when too small (only between steps: begin() synced).
  void put(std::shared_ptr<vk::Buf>& b, const void* src, size_t n) {
    if (b->bytes < n) b = d_.buffer(n * 2, true);
    std::memcpy(b->map, src, n);
  }

  void record() {
    if (recording_) return;
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    vk::check(fn.vkResetCommandBuffer(cb_, 0), "vkResetCommandBuffer");
    vk::check(fn.vkBeginCommandBuffer(cb_, &bi), "vkBeginCommandBuffer");
    recording_ = true;
    if (prof_) prof_->start(cb_);
  }

  // Every later command sees what earlier ones wrote (and the host, after the submit's fence).
  void barrier(VkPipelineStageFlags dst_stage = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
               VkAccessFlags dst = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                                   VK_ACCESS_TRANSFER_WRITE_BIT) {
    VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    mb.dstAccessMask = dst;
    fn.vkCmdPipelineBarrier(cb_, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, dst_stage, 0, 1, &mb,
                            0, nullptr, 0, nullptr);
  }

  // Deferred QK-norms, dispatched on their own (before any op that is not the rope that takes them).
  struct QkNorm {
    const Buffer* x;
    Vector w;
    int64_t rows;
  };
  void settle(bool qk_norms = true) {
    if (settling_) return;
    settling_ = true;  // what it emits must not settle the rest first (program order)
    struct Done {
      bool& f;
      ~Done() { f = false; }
    } done{settling_};
    if (gemv_) {
      const PendingGemv g = *gemv_;
      gemv_.reset();
      gemv1(*g.w, vbuf(g.norm ? *g.norm->x : *g.x), vbuf(*g.y), g.norm ? &*g.norm : nullptr);
    }
    if (norm_) {
      const PendingNorm n = *norm_;
      norm_.reset();
      norm_now(*n.x, *n.y, n.w, 1);
    }
    emit_rope();
    if (!qk_norms) return;
    std::vector<QkNorm> q;
    q.swap(qk_norms_);
    for (const QkNorm& n : q) norm_now(*n.x, const_cast<Buffer&>(*n.x), n.w, n.rows);
  }

  void dispatch(const std::string& shader, std::initializer_list<vk::Buf*> bufs, const void* push, size_t push_bytes, Grid g,
                Reads rd, uint32_t gz = 1, bool settle_first = true, std::span<const uint32_t> spec = {}) {
    if (settle_first) settle();
    const VkPipeline pipe = d_.pipeline(shader, spec);
    if (sets_used_ == kSets) flush();
    record();
    VkDescriptorSetAllocateInfo ai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
    ai.descriptorPool = pool_;
    ai.descriptorSetCount = 1;
    const VkDescriptorSetLayout layout = d_.set_layout();
    ai.pSetLayouts = &layout;
    VkDescriptorSet set;
    vk::check(fn.vkAllocateDescriptorSets(d_.dev(), &ai, &set), "vkAllocateDescriptorSets");
    ++sets_used_;
    VkDescriptorBufferInfo info[vk::kBindings];
    VkWriteDescriptorSet wr[vk::kBindings];
    auto it = bufs.begin();
    for (int i = 0; i < vk::kBindings; ++i) {
      const vk::Buf* b = it != bufs.end() ? *it++ : dummy_.get();
      info[i] = {b->buf, 0, VK_WHOLE_SIZE};
      wr[i] = {VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
      wr[i].dstSet = set;
      wr[i].dstBinding = static_cast<uint32_t>(i);
      wr[i].descriptorCount = 1;
      wr[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
      wr[i].pBufferInfo = &info[i];
    }
    fn.vkUpdateDescriptorSets(d_.dev(), vk::kBindings, wr, 0, nullptr);
    fn.vkCmdBindPipeline(cb_, VK_PIPELINE_BIND_POINT_COMPUTE, pipe);
    fn.vkCmdBindDescriptorSets(cb_, VK_PIPELINE_BIND_POINT_COMPUTE, d_.pipeline_layout(), 0, 1, &set, 0, nullptr);
    fn.vkCmdPushConstants(cb_, d_.pipeline_layout(), VK_SHADER_STAGE_COMPUTE_BIT, 0, static_cast<uint32_t>(push_bytes), push);
    fn.vkCmdDispatch(cb_, g.x, g.y, gz);
    barrier();
    if (prof_) prof_->dispatched(cb_, shader, rd);
  }

  // Submits what was recorded and waits (a step's end, or a full descriptor pool).
  void flush() {
    settle();
    if (!recording_) return;
    barrier(VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
    recording_ = false;
    vk::check(fn.vkEndCommandBuffer(cb_), "vkEndCommandBuffer");
    d_.submit_wait(cb_);
    if (prof_) prof_->collect();
    vk::check(fn.vkResetDescriptorPool(d_.dev(), pool_, 0), "vkResetDescriptorPool");
    sets_used_ = 0;
    keep_.clear();
  }

  std::shared_ptr<vk::Device> hold_;  // the device outlives the stream
  vk::Device& d_;
  const ModelConfig& c_;
  Batch b_;
  BatchLayout lay_;
  VkCommandBuffer cb_ = VK_NULL_HANDLE;
  VkDescriptorPool pool_ = VK_NULL_HANDLE;
  bool recording_ = false;
  uint32_t sets_used_ = 0;
  std::shared_ptr<vk::Buf> dummy_, batch_, rope_, done_;
  std::vector<std::shared_ptr<vk::Buf>> scratch_, keep_;
  size_t scratch_used_ = 0;
  std::vector<HostCopy> after_sync_;
  std::unique_ptr<Profile> prof_;  // --profile
  std::vector<QkNorm> qk_norms_;
  std::optional<PendingNorm> norm_;
  std::optional<PendingGemv> gemv_;
  std::optional<PendingRope> pend_rope_, pend_rope_q_;
  bool settling_ = false;
  const MatmulPath mm_;
  bool sg_ = false;
};

}  // namespace

std::unique_ptr<Stream> make_vulkan_stream(std::shared_ptr<vk::Device> dev, const ModelConfig& c, const StreamOptions& o) {
  return std::make_unique<VulkanStream>(std::move(dev), c, o.profile);
}

}  // namespace tessera::engine
