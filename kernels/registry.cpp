// The kernel table, its overrides and kernel selection.
#include "kernels/registry.h"

#include <cstdlib>
#include <map>
#include <mutex>

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

void KernelRegistry::add(Op op, Backend backend, GgmlType wtype, std::string variant, int priority,
                         int64_t row_block, SupportsFn supports, MatmulFn run) {
  MatmulKernel k;
  k.op = op;
  k.backend = backend;
  k.wtype = wtype;
  k.act = activation_type_for(wtype);
  k.name = op_key(op, wtype) + "_" + std::string(act_type_name(k.act)) + "_" + variant;
  k.variant = std::move(variant);
  k.priority = priority;
  k.row_block = row_block < 1 ? 1 : row_block;
  k.supports = supports;
  k.run = run;
  for (const MatmulKernel& other : kernels_)
    if (other.name == k.name) throw_error("kernel '{}' registered twice", k.name);
  kernels_.push_back(std::move(k));
}

const std::vector<MatmulKernel>& matmul_kernels() {
  static const std::vector<MatmulKernel> all = [] {
    KernelRegistry r;
    register_ref_kernels(r);
    register_cpu_kernels(r);
    return r.kernels();
  }();
  return all;
}

const MatmulKernel* find_kernel(std::string_view name) {
  for (const MatmulKernel& k : matmul_kernels())
    if (k.name == name) return &k;
  return nullptr;
}

bool kernel_supports(const MatmulKernel& k, const MatmulShape& s, const CpuCaps& caps) {
  if (k.wtype != s.wtype) return false;
  if (k.op == Op::Gemv && s.n_tokens > 1) return false;
  if (s.n_in < 0 || s.n_out < 0 || s.n_tokens < 0) return false;
  if (s.n_in % type_traits(s.wtype).block_size != 0) return false;
  // Q8 activations come in 32-value blocks (Q8_K in 256-value blocks, implied by the K-quant types).
  if (k.act != ActType::F32 && k.act != ActType::F16 && k.act != ActType::BF16 && s.n_in % 32 != 0)
    return false;
  return k.supports == nullptr || k.supports(k, s, caps);
}

namespace {

struct Overrides {
  std::mutex mu;
  std::map<std::string, std::string> by_key;
  bool env_read = false;
};

Overrides& overrides() {
  static Overrides o;
  return o;
}

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

// Reads TESSERA_KERNELS once, under the lock.
void read_env_locked(Overrides& o) {
  if (o.env_read) return;
  o.env_read = true;
  if (const char* env = std::getenv("TESSERA_KERNELS")) parse_into(o.by_key, env);
}

}  // namespace

void set_kernel_override(const std::string& key, const std::string& name) {
  Overrides& o = overrides();
  std::lock_guard<std::mutex> lock(o.mu);
  read_env_locked(o);
  if (key.empty()) throw_error("kernel override needs an op key (e.g. gemv_q4_K)");
  if (name.empty()) o.by_key.erase(key);
  else o.by_key[key] = name;
}

void set_kernel_overrides(const std::string& list) {
  Overrides& o = overrides();
  std::lock_guard<std::mutex> lock(o.mu);
  read_env_locked(o);
  std::map<std::string, std::string> m = o.by_key;
  parse_into(m, list);
  o.by_key = std::move(m);
}

void clear_kernel_overrides() {
  Overrides& o = overrides();
  std::lock_guard<std::mutex> lock(o.mu);
  o.env_read = true;  // an explicit clear also drops what the environment said
  o.by_key.clear();
}

const MatmulKernel& select_matmul_kernel(const MatmulShape& s, const CpuCaps& caps) {
  const Op op = s.n_tokens > 1 ? Op::Gemm : Op::Gemv;
  const std::string key = op_key(op, s.wtype);
  std::string forced;
  {
    Overrides& o = overrides();
    std::lock_guard<std::mutex> lock(o.mu);
    read_env_locked(o);
    if (auto it = o.by_key.find(key); it != o.by_key.end()) forced = it->second;
    else if (auto star = o.by_key.find("*"); star != o.by_key.end()) forced = star->second;
  }
  const std::string act(act_type_name(activation_type_for(s.wtype)));
  if (!forced.empty()) {
    const MatmulKernel* k = find_kernel(forced);
    if (!k) k = find_kernel(key + "_" + act + "_" + forced);  // a bare variant: "avx2"
    if (!k) throw_error("kernel override {}={}: no such kernel (see `tessera kernels list`)", key, forced);
    if (k->op != op || k->wtype != s.wtype)
      throw_error("kernel override {}={}: that kernel does not implement {}", key, forced, key);
    if (!kernel_supports(*k, s, caps))
      throw_error("kernel override {}={}: not supported here for n_in={} n_out={} n_tokens={} (cpu: {})",
                  key, k->name, s.n_in, s.n_out, s.n_tokens, caps.describe());
    return *k;
  }
  const MatmulKernel* best = nullptr;
  for (const MatmulKernel& k : matmul_kernels()) {
    if (k.op != op || k.wtype != s.wtype) continue;
    if (k.backend != Backend::Cpu && k.backend != Backend::Ref) continue;
    if (!kernel_supports(k, s, caps)) continue;
    if (!best || k.priority > best->priority) best = &k;
  }
  if (!best)
    throw_error("no kernel for {} (weights {}, n_in={} n_out={} n_tokens={}) on this CPU ({})", key,
                type_name(s.wtype), s.n_in, s.n_out, s.n_tokens, caps.describe());
  return *best;
}

}  // namespace tessera::ops
