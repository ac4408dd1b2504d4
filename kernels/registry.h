// The kernel registry: every implementation of every op, under one name
// `<op>_<weight type>_<activation type>_<variant>` (e.g. gemv_q4_K_q8_K_avx512), with what it
// supports. Dispatch, overrides, the conformance sweep, the benchmarks and `tessera kernels list`
// all read this one table. Adding a variant = one kernel file + one line in a registration function.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/cpu_caps.h"
#include "kernels/kernel_args.h"
#include "gguf/ggml_types.h"

namespace tessera::ops {

enum class Backend : uint8_t { Ref, Cpu, Hip, Vulkan };
enum class Op : uint8_t { Gemv, Gemm };  // gemv: one token; gemm: several tokens

std::string_view backend_name(Backend b);  // "ref", "cpu", "hip", "vulkan"
std::string_view op_name(Op op);           // "gemv", "gemm"
std::string_view act_type_name(ActType a); // "f32", "f16", "bf16", "q8_0", "q8_1", "q8_K"

// The activation format a weight type's kernels consume (as llama.cpp's CPU backend does).
ActType activation_type_for(GgmlType w);
// The weight types ops::matmul handles.
const std::vector<GgmlType>& matmul_weight_types();

// What a kernel is asked to do.
struct MatmulShape {
  GgmlType wtype = GgmlType::F32;
  int64_t n_in = 0, n_out = 0, n_tokens = 0;
};

struct MatmulKernel;
using SupportsFn = bool (*)(const MatmulKernel&, const MatmulShape&, const CpuCaps&);

struct MatmulKernel {
  std::string name;     // <op>_<weight>_<act>_<variant>
  Op op = Op::Gemv;
  Backend backend = Backend::Cpu;
  GgmlType wtype = GgmlType::F32;
  ActType act = ActType::F32;
  std::string variant;  // "ref", "scalar", "avx2", "avx512", ...
  int priority = 0;     // among supported kernels of one op key, the highest is chosen
  int64_t row_block = 1;  // rows per work item are a multiple of this (except the matrix's tail)
  SupportsFn supports = nullptr;  // extra conditions (CPU features); shape/type checks are common
  MatmulFn run = nullptr;
};

// The registry's builder, handed to the registration functions below.
class KernelRegistry {
 public:
  // Adds a kernel named <op>_<wtype>_<act>_<variant>; act follows from wtype.
  void add(Op op, Backend backend, GgmlType wtype, std::string variant, int priority, int64_t row_block,
           SupportsFn supports, MatmulFn run);
  const std::vector<MatmulKernel>& kernels() const { return kernels_; }

 private:
  std::vector<MatmulKernel> kernels_;
};

// Registration functions, one per kernel family (explicit lists: nothing relies on static initialisers).
void register_ref_kernels(KernelRegistry& r);  // kernels/ref/matmul_ref.cpp
void register_cpu_kernels(KernelRegistry& r);  // kernels/cpu/register_cpu.cpp

// Every registered matmul kernel, in registration order.
const std::vector<MatmulKernel>& matmul_kernels();
const MatmulKernel* find_kernel(std::string_view name);

// The op key overrides are keyed by: "<op>_<weight type>", e.g. "gemv_iq4_nl".
std::string op_key(Op op, GgmlType wtype);

// True when kernel k can run this shape on a CPU with these capabilities (type, op, block multiple,
// and the kernel's own supports()).
bool kernel_supports(const MatmulKernel& k, const MatmulShape& shape, const CpuCaps& caps);

// Overrides: op key -> kernel name or variant ("gemv_q4_K" -> "gemv_q4_K_q8_K_avx2" or "avx2");
// the key "*" sets a variant for every op key without its own override. Read first from
// TESSERA_KERNELS="key=name,key=name", then changed by set_kernel_override (the CLI's --kernel flag).
// An unknown name is an error when the kernel is chosen. An empty name removes the override.
void set_kernel_override(const std::string& op_key, const std::string& name);
// Parses "key=name,key=name" and applies each; throws tessera::Error on a malformed list.
void set_kernel_overrides(const std::string& list);
void clear_kernel_overrides();

// The kernel ops::matmul uses for this shape on this CPU: the override when one is set (an error if it
// names no kernel of this op key or one that cannot run the shape), else the supported kernel with the
// highest priority. Never falls back silently: throws tessera::Error when nothing supports the shape.
const MatmulKernel& select_matmul_kernel(const MatmulShape& shape, const CpuCaps& caps);

}  // namespace tessera::ops
