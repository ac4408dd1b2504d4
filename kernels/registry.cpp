// The kernel table, its overrides and kernel selection.
#include "kernels/registry.h"

#include <cstdlib>
#include <map>

#include "core/error.h"

namespace tessera::ops {

std::string_view backend_name(Backend b) {
  switch (b) {
    case Backend::Ref: return "ref";
    case Backend::Cpu: return "cpu";
    case Backend::Hip: return "hip";
    case Backend::Vulkan: return "vulkan";
  }
  return "?";
}

std::string_view op_name(Op op) { return op == Op::Gemv ? "gemv" : "gemm"; }

std::string_view act_type_name(ActType a) {
  switch (a) {
    case ActType::F32: return "f32";
    case ActType::F16: return "f16";
    case ActType::BF16: return "bf16";
    case ActType::Q8_0: return "q8_0";
    case ActType::Q8_1: return "q8_1";
    case ActType::Q8_K: return "q8_K";
  }
  return "?";
}

ActType activation_type_for(GgmlType w) {
  switch (w) {
    case GgmlType::F32: return ActType::F32;
    case GgmlType::F16: return ActType::F16;
    case GgmlType::BF16: return ActType::BF16;
    case GgmlType::Q4_1: case GgmlType::Q5_1: return ActType::Q8_1;
    case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K: case GgmlType::IQ4_XS:
      return ActType::Q8_K;
    default: return ActType::Q8_0;  // Q4_0, Q5_0, Q8_0, IQ4_NL, MXFP4
  }
}

const std::vector<GgmlType>& matmul_weight_types() {
  static const std::vector<GgmlType> types = {
      GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0,   GgmlType::Q4_1,
      GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q4_K,   GgmlType::Q5_K,
      GgmlType::Q6_K, GgmlType::IQ4_NL, GgmlType::IQ4_XS, GgmlType::MXFP4};
  return types;
}

std::string op_key(Op op, GgmlType wtype) {
  return std::string(op_name(op)) + "_" + std::string(type_name(wtype));
}

std::string DeviceCaps::describe() const {
  return std::string(backend_name(backend)) + " (" + cpu.describe() + ")";
}

DeviceCaps host_caps(Backend backend) {
  DeviceCaps c;
  c.backend = backend;
  c.cpu = cpu_caps();
  return c;
}

void KernelRegistry::add(Op op, Backend backend, GgmlType wtype, std::string variant, int priority,
                         int64_t row_block, SupportsFn supports, MatmulFn run, int64_t max_tokens,
                         std::optional<ActType> act) {
  MatmulKernel k;
  k.op = op;
  k.backend = backend;
  k.wtype = wtype;
  k.act = act.value_or(activation_type_for(wtype));
  k.name = op_key(op, wtype) + "_" + std::string(act_type_name(k.act)) + "_" + variant;
  k.variant = std::move(variant);
  k.priority = priority;
  k.row_block = row_block < 1 ? 1 : row_block;
  k.max_tokens = op == Op::Gemv ? 1 : max_tokens;
  k.supports = supports;
  k.run = run;
  for (const MatmulKernel& other : kernels_)
    if (other.name == k.name) throw_error("kernel '{}' registered twice", k.name);
  kernels_.push_back(std::move(k));
}

void KernelRegistry::add_op(std::string op_key, Backend backend, std::string variant, int priority,
                            OpSupportsFn supports, OpFn run) {
  OpKernel k;
  k.name = op_key + "_" + variant;
  k.op = std::move(op_key);
  k.backend = backend;
  k.variant = std::move(variant);
  k.priority = priority;
  k.supports = supports;
  k.run = run;
  for (const OpKernel& other : op_kernels_)
    if (other.name == k.name) throw_error("kernel '{}' registered twice", k.name);
  op_kernels_.push_back(std::move(k));
}

namespace {
const KernelRegistry& registry() {
  static const KernelRegistry r = [] {
    KernelRegistry reg;
    register_ref_kernels(reg);
    register_cpu_kernels(reg);
    register_op_kernels(reg);
    return reg;
  }();
  return r;
}
}  // namespace

const std::vector<MatmulKernel>& matmul_kernels() { return registry().kernels(); }
const std::vector<OpKernel>& op_kernels() { return registry().op_kernels(); }

const OpKernel* find_op_kernel(std::string_view name) {
  for (const OpKernel& k : op_kernels())
    if (k.name == name) return &k;
  return nullptr;
}

std::string quantize_op_key(ActType act) {
  return act == ActType::F32 ? std::string() : "quantize_" + std::string(act_type_name(act));
}

bool op_kernel_supports(const OpKernel& k, const DeviceCaps& caps, int64_t row) {
  return backend_runs(caps.backend, k.backend) && (k.supports == nullptr || k.supports(caps, row));
}

std::string variant_cpu_needs(std::string_view v) {
  if (v.starts_with("avx512vbmi")) return "avx512f avx512bw avx512vl avx512_vnni avx512_vbmi fma f16c";
  if (v.starts_with("avx512")) return "avx512f avx512bw avx512vl avx512_vnni fma f16c";
  if (v.starts_with("avxvnni")) return "avx2 fma f16c avx_vnni";
  if (v.starts_with("avx2")) return "avx2 fma f16c";
  return "";
}

const MatmulKernel* find_kernel(std::string_view name) {
  for (const MatmulKernel& k : matmul_kernels())
    if (k.name == name) return &k;
  return nullptr;
}

bool backend_runs(Backend device, Backend kernel_backend) {
  return device == kernel_backend || (device == Backend::Cpu && kernel_backend == Backend::Ref);
}

bool kernel_supports(const MatmulKernel& k, const MatmulShape& s, const DeviceCaps& caps) {
  if (!backend_runs(caps.backend, k.backend)) return false;
  if (k.wtype != s.wtype) return false;
  if (s.n_tokens < 1 || (k.max_tokens > 0 && s.n_tokens > k.max_tokens)) return false;
  if (s.n_in < 0 || s.n_out < 0) return false;
  if (s.n_in % type_traits(s.wtype).block_size != 0) return false;
  // Q8 activations come in 32-value blocks (Q8_K in 256-value blocks, implied by the K-quant types).
  if (k.act != ActType::F32 && k.act != ActType::F16 && k.act != ActType::BF16 && s.n_in % 32 != 0)
    return false;
  return k.supports == nullptr || k.supports(k, s, caps);
}

namespace {

void parse_into(std::map<std::string, std::string>& m, const std::string& list) {
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t end = list.find(',', pos);
    if (end == std::string::npos) end = list.size();
    const std::string item = list.substr(pos, end - pos);
    pos = end + 1;
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      throw_error("kernel override '{}' is not of the form op_key=kernel_name", item);
    const std::string key = item.substr(0, eq), name = item.substr(eq + 1);
    if (name.empty()) m.erase(key);
    else m[key] = name;
  }
}

}  // namespace

KernelPolicy KernelPolicy::from_env() {
  KernelPolicy p;
  if (const char* env = std::getenv("TESSERA_KERNELS")) p.parse(env);
  return p;
}

void KernelPolicy::set(const std::string& key, const std::string& name) {
  if (key.empty()) throw_error("kernel override needs an op key (e.g. gemv_q4_K)");
  if (name.empty()) by_key_.erase(key);
  else by_key_[key] = name;
}

void KernelPolicy::parse(const std::string& list) {
  std::map<std::string, std::string> m = by_key_;
  parse_into(m, list);
  by_key_ = std::move(m);
}

std::string KernelPolicy::describe() const {
  std::string s;
  for (const auto& [key, name] : by_key_) s += (s.empty() ? "" : ",") + key + "=" + name;
  return s;
}

const MatmulKernel& KernelPolicy::choose(const MatmulShape& s, const DeviceCaps& caps) const {
  const Op op = s.n_tokens > 1 ? Op::Gemm : Op::Gemv;
  const std::string key = op_key(op, s.wtype);
  std::string forced;
  if (auto it = by_key_.find(key); it != by_key_.end()) forced = it->second;
  else if (auto star = by_key_.find("*"); star != by_key_.end()) forced = star->second;
  const std::string act(act_type_name(activation_type_for(s.wtype)));
  if (!forced.empty()) {
    const MatmulKernel* k = find_kernel(forced);
    if (!k) k = find_kernel(key + "_" + act + "_" + forced);  // a bare variant: "avx2"
    if (!k) throw_error("kernel override {}={}: no such kernel (see `tessera kernels list`)", key, forced);
    if (k->op != op || k->wtype != s.wtype)
      throw_error("kernel override {}={}: that kernel does not implement {}", key, forced, key);
    if (!kernel_supports(*k, s, caps))
      throw_error("kernel override {}={}: not supported here for n_in={} n_out={} n_tokens={} ({})", key, k->name,
                  s.n_in, s.n_out, s.n_tokens, caps.describe());
    return *k;
  }
  const MatmulKernel* best = nullptr;
  const bool prefer = prefer_act_ && s.n_tokens >= prefer_min_tokens_;
  auto better = [&](const MatmulKernel& k) {
    if (!best) return true;
    if (prefer && (k.act == *prefer_act_) != (best->act == *prefer_act_)) return k.act == *prefer_act_;
    return k.priority > best->priority;
  };
  for (const MatmulKernel& k : matmul_kernels()) {
    if (k.op != op || k.wtype != s.wtype) continue;
    if (!kernel_supports(k, s, caps)) continue;
    if (better(k)) best = &k;
  }
  if (!best)
    throw_error("no kernel for {} (weights {}, n_in={} n_out={} n_tokens={}) on {}", key, type_name(s.wtype), s.n_in,
                s.n_out, s.n_tokens, caps.describe());
  return *best;
}

const OpKernel& KernelPolicy::choose_op(const std::string& key, const DeviceCaps& caps, int64_t row) const {
  const OpKernel* forced = nullptr;
  if (auto it = by_key_.find(key); it != by_key_.end()) {
    forced = find_op_kernel(it->second);
    if (!forced) forced = find_op_kernel(key + "_" + it->second);  // a bare variant: "ref"
    if (!forced) throw_error("kernel override {}={}: no such kernel (see `tessera kernels list`)", key, it->second);
    if (forced->op != key) throw_error("kernel override {}={}: that kernel does not implement {}", key, it->second, key);
  } else if (auto star = by_key_.find("*"); star != by_key_.end()) {
    // "*" reaches this op only where it has a kernel of that name or variant
    forced = find_op_kernel(star->second);
    if (!forced || forced->op != key) forced = find_op_kernel(key + "_" + star->second);
  }
  if (forced) {
    if (!op_kernel_supports(*forced, caps, row))
      throw_error("kernel override {}={}: not supported here (row {}, {})", key, forced->name, row, caps.describe());
    return *forced;
  }
  const OpKernel* best = nullptr;
  for (const OpKernel& k : op_kernels()) {
    if (k.op != key || !op_kernel_supports(k, caps, row)) continue;
    if (!best || k.priority > best->priority) best = &k;
  }
  if (!best) throw_error("no kernel for {} (row {}) on {}", key, row, caps.describe());
  return *best;
}

BoundMatmul BoundMatmul::bind(const KernelPolicy& policy, GgmlType wtype, int64_t n_in, int64_t n_out,
                              const DeviceCaps& caps) {
  BoundMatmul b;
  b.by_tokens[1] = &policy.choose(MatmulShape{wtype, n_in, n_out, 1}, caps);  // throws: nothing runs this weight
  if (const std::string q = quantize_op_key(b.by_tokens[1]->act); !q.empty())
    b.quantize = policy.choose_op(q, caps).fn<QuantizeFn>();
  auto try_choose = [&](int64_t n) -> const MatmulKernel* {
    try {
      return &policy.choose(MatmulShape{wtype, n_in, n_out, n}, caps);
    } catch (const Error& e) {
      if (b.unsupported.empty()) b.unsupported = e.what();
      return nullptr;
    }
  };
  for (int64_t n = 2; n <= kSmall; ++n) b.by_tokens[n] = try_choose(n);
  b.many = try_choose(int64_t{1} << 30);
  if (b.many) {
    if (const std::string q = quantize_op_key(b.many->act); !q.empty())
      b.quantize_many = b.many->act == b.by_tokens[1]->act ? b.quantize : policy.choose_op(q, caps).fn<QuantizeFn>();
  }
  return b;
}

QuantizeFn BoundMatmul::quantizer(ActType act) const {
  if (by_tokens[1] && by_tokens[1]->act == act) return quantize;
  if (many && many->act == act) return quantize_many;
  return nullptr;
}

const MatmulKernel& BoundMatmul::for_tokens(int64_t n) const {
  const MatmulKernel* k = n <= kSmall ? by_tokens[n < 1 ? 1 : n] : many;
  if (!k) throw_error("no kernel bound for {} tokens: {}", n, unsupported);
  return *k;
}

}  // namespace tessera::ops

namespace tessera::ops {

BoundOps BoundOps::bind(const KernelPolicy& policy, const DeviceCaps& caps, int64_t head_dim, RopeType rope) {
  BoundOps b;
  auto pick = [&](const std::string& key, int64_t row) -> const OpKernel& {
    const OpKernel& k = policy.choose_op(key, caps, row);
    b.names += (b.names.empty() ? "" : ", ") + k.name;
    return k;
  };
  b.attention = pick("attention_f16", head_dim).fn<AttendRowsFn>();
  b.rmsnorm = pick("rmsnorm_f32", 0).fn<RmsnormFn>();
  b.rope = pick(rope == RopeType::Norm ? "rope_norm_f32" : "rope_neox_f32", 0).fn<RopeFn>();
  b.swiglu = pick("swiglu_f32", 0).fn<SwigluFn>();
  return b;
}

}  // namespace tessera::ops
