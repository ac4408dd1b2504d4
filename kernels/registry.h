// The kernel registry: every implementation of every op, under one name
// `<op>_<weight type>_<activation type>_<variant>` (e.g. gemv_q4_K_q8_K_avx512), with what it
// supports. Dispatch, overrides, the conformance sweep, the benchmarks and `tessera kernels list`
// all read this one table. Adding a variant = one kernel file + one line in a registration function.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
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

// What a backend's device offers kernels to choose by. CPU kernels look at `cpu`.
struct DeviceCaps {
  Backend backend = Backend::Cpu;
  CpuCaps cpu;
  std::string describe() const;  // "cpu (avx2 fma ...)"
};

// The capabilities of this machine's CPU as the cpu / ref backends see it (TESSERA_CPU_LEVEL applied).
DeviceCaps host_caps(Backend backend = Backend::Cpu);

struct MatmulKernel;
// Extra conditions of a kernel (CPU features, row lengths); the common shape and type checks are separate.
using SupportsFn = bool (*)(const MatmulKernel&, const MatmulShape&, const DeviceCaps&);

struct MatmulKernel {
  std::string name;     // <op>_<weight>_<act>_<variant>
  Op op = Op::Gemv;
  Backend backend = Backend::Cpu;
  GgmlType wtype = GgmlType::F32;
  ActType act = ActType::F32;
  std::string variant;  // "ref", "scalar", "avx2", "avx512", ...
  int priority = 0;     // among supported kernels of one op key, the highest is chosen
  int64_t row_block = 1;  // rows per work item are a multiple of this (except the matrix's tail)
  int64_t max_tokens = 0; // most tokens per call (0: any; gemv kernels: 1)
  SupportsFn supports = nullptr;
  MatmulFn run = nullptr;
};

// ---- The smaller ops: attention, activation quantization, element-wise ----------------------------
// Their kernels share one entry type, named <op key>_<variant> like the matmul ones, e.g.
// attention_f16_avx512, quantize_q8_0_ref, swiglu_f32_avx512. Op keys: attention_f16 (over the f16
// paged KV), quantize_<act> (f16, bf16, q8_0, q8_1, q8_K: activations prepared for matmul),
// rmsnorm_f32, rope_neox_f32, rope_norm_f32, swiglu_f32. Each op has a `ref` twin (Backend::Ref) the others are
// compared with.

struct AttentionArgs;                      // kernels/cpu/attention.h
namespace detail { struct AttnRows; }      // kernels/cpu/attention.h

// The signatures, one per op (argument meanings in the headers named).
// attention_f16: up to kMaxRows query rows sharing one KV head (ops::attention splits the work).
using AttendRowsFn = void (*)(const AttentionArgs& a, const detail::AttnRows& rows);
// quantize_<act>: tokens [t_begin, t_end) of x into the buffers of a PreparedActs (kernels/ref/act_quant.h).
using QuantizeFn = void (*)(ActType type, const float* x, int64_t x_stride, int64_t n_in, int64_t t_begin,
                            int64_t t_end, int8_t* qs, float* d, int32_t* s, int32_t* s32, uint16_t* h16);
// rmsnorm_f32, rope_neox_f32 / rope_norm_f32, swiglu_f32 (kernels/cpu/elementwise.h).
using RmsnormFn = void (*)(const float* x, int64_t x_stride, float* y, int64_t y_stride, const float* w,
                           int64_t n_rows, int64_t n, double eps);
using RopeFn = void (*)(float* x, int64_t n_heads, int64_t head_dim, const float* cos, const float* sin);
using SwigluFn = void (*)(float* g, const float* u, int64_t n);
using OpFn = std::variant<AttendRowsFn, QuantizeFn, RmsnormFn, RopeFn, SwigluFn>;

// Whether a kernel runs on this device for rows of this length (head_dim for attention; 0: any).
using OpSupportsFn = bool (*)(const DeviceCaps& caps, int64_t row);

struct OpKernel {
  std::string name;     // <op key>_<variant>
  std::string op;       // op key, e.g. "attention_f16"
  Backend backend = Backend::Cpu;
  std::string variant;  // "ref", "avx512", ...
  int priority = 0;     // among supported kernels of one op key, the highest is chosen
  OpSupportsFn supports = nullptr;  // CPU features / row lengths (nullptr: any)
  OpFn run;
  template <class Fn> Fn fn() const { return std::get<Fn>(run); }
};

// The CPU features a variant's kernels need, for messages ("avx2 fma f16c"; "" for ref and scalar).
std::string variant_cpu_needs(std::string_view variant);

// The registry's builder, handed to the registration functions below.
class KernelRegistry {
 public:
  // Adds a kernel named <op>_<wtype>_<act>_<variant>; act follows from wtype unless given (a kernel that
  // consumes another activation format than the type's usual one). max_tokens 0: gemv 1, gemm any.
  void add(Op op, Backend backend, GgmlType wtype, std::string variant, int priority, int64_t row_block,
           SupportsFn supports, MatmulFn run, int64_t max_tokens = 0, std::optional<ActType> act = std::nullopt);
  const std::vector<MatmulKernel>& kernels() const { return kernels_; }
  // Adds a kernel of one of the smaller ops, named <op_key>_<variant>.
  void add_op(std::string op_key, Backend backend, std::string variant, int priority, OpSupportsFn supports,
              OpFn run);
  const std::vector<OpKernel>& op_kernels() const { return op_kernels_; }

 private:
  std::vector<MatmulKernel> kernels_;
  std::vector<OpKernel> op_kernels_;
};

// Registration functions, one per kernel family (explicit lists: nothing relies on static initialisers).
void register_ref_kernels(KernelRegistry& r);  // kernels/ref/matmul_ref.cpp
void register_cpu_kernels(KernelRegistry& r);  // kernels/cpu/register_cpu.cpp
void register_op_kernels(KernelRegistry& r);   // kernels/cpu/register_ops.cpp (all variants, ref twins too)

// Every registered matmul kernel, in registration order.
const std::vector<MatmulKernel>& matmul_kernels();
const MatmulKernel* find_kernel(std::string_view name);
// Every registered kernel of the smaller ops, in registration order.
const std::vector<OpKernel>& op_kernels();
const OpKernel* find_op_kernel(std::string_view name);
// The op key of activation quantization to this type ("quantize_q8_0"); F32 needs none ("").
std::string quantize_op_key(ActType act);
// True when k runs on this device for rows of this length.
bool op_kernel_supports(const OpKernel& k, const DeviceCaps& caps, int64_t row = 0);

// The op key overrides are keyed by: "<op>_<weight type>", e.g. "gemv_iq4_nl".
std::string op_key(Op op, GgmlType wtype);

// True when a device of this backend can run kernels of kernel_backend (a CPU also runs the reference).
bool backend_runs(Backend device, Backend kernel_backend);

// True when kernel k can run this shape on this device (backend, type, op, token count, block multiple,
// and the kernel's own supports()).
bool kernel_supports(const MatmulKernel& k, const MatmulShape& shape, const DeviceCaps& caps);

// Which kernel each op key uses: an override by name or by variant ("gemv_q4_K=gemv_q4_K_q8_K_avx2",
// "gemv_q4_K=avx2"; the key "*" covers every op key without its own), else the supported kernel of
// the highest priority. It is part of a model's load options (TESSERA_KERNELS and --kernel fill it);
// kernels are chosen with it once, when weights are bound.
class KernelPolicy {
 public:
  // The policy TESSERA_KERNELS="key=name,key=name" describes (empty when unset).
  static KernelPolicy from_env();
  // One override; an empty name removes it.
  void set(const std::string& op_key, const std::string& name);
  // Applies "key=name,key=name"; throws tessera::Error on a malformed list (and changes nothing then).
  void parse(const std::string& list);
  bool empty() const { return by_key_.empty(); }
  std::string describe() const;  // "key=name,key=name" (empty: no override)
  // A preferred activation type for the matrices bound with this policy, for calls of at least
  // `min_tokens` tokens: among the kernels that support such a shape, those consuming `act` win over every
  // other (by priority among themselves); otherwise the usual choice. Set per tensor at load (ffn_down's
  // input has outliers that Q8_K's one scale per 256 values flattens); explicit overrides still win.
  void prefer_act(std::optional<ActType> act, int64_t min_tokens = 1) {
    prefer_act_ = act;
    prefer_min_tokens_ = min_tokens;
  }

  // The kernel for this shape on this device: the override when one is set (an error if it names no
  // kernel of this op key or one that cannot run the shape), else the supported kernel with the highest
  // priority. Never falls back silently: throws tessera::Error when nothing supports the shape.
  const MatmulKernel& choose(const MatmulShape& shape, const DeviceCaps& caps) const;
  // The same for a smaller op by its key (row: see OpSupportsFn). The key "*" applies to these ops only
  // where the op has a kernel of that name or variant ("*=ref" forces every reference; "*=avx2" leaves
  // attention, which has no avx2 kernel, at its default).
  const OpKernel& choose_op(const std::string& op_key, const DeviceCaps& caps, int64_t row = 0) const;

 private:
  std::map<std::string, std::string> by_key_;
  std::optional<ActType> prefer_act_;
  int64_t prefer_min_tokens_ = 1;
};

// The kernels bound to one weight matrix at load, by the number of tokens of a call.
struct BoundMatmul {
  static constexpr int64_t kSmall = 8;         // token counts bound one by one
  const MatmulKernel* by_tokens[kSmall + 1] = {};  // [n] for 1 <= n <= kSmall
  const MatmulKernel* many = nullptr;          // more than kSmall tokens
  QuantizeFn quantize = nullptr;               // prepares the activations (quantize_<act>; null for f32)
  QuantizeFn quantize_many = nullptr;          // the same for `many` (its activation type may differ)
  std::string unsupported;                     // why an entry is null (an override that cannot run it)

  // Chooses with the policy for every token count (throws when not even one token can run).
  static BoundMatmul bind(const KernelPolicy& policy, GgmlType wtype, int64_t n_in, int64_t n_out,
                          const DeviceCaps& caps);
  // The kernel for n tokens; throws tessera::Error (with `unsupported`) when none was bound.
  const MatmulKernel& for_tokens(int64_t n) const;
  // The bound quantizer for activations of this type (null when none was bound for it).
  QuantizeFn quantizer(ActType act) const;
};

// How RoPE pairs the values of a head: NEOX (qwen*: i with i + head_dim/2) or NORM (llama: 2i with 2i+1).
enum class RopeType { Neox, Norm };

// The kernels of the smaller ops one stream runs, chosen once (when the stream is made) with the policy.
// (Activation quantization is bound with each weight: BoundMatmul::quantize.)
struct BoundOps {
  AttendRowsFn attention = nullptr;  // attention_f16
  RmsnormFn rmsnorm = nullptr;       // rmsnorm_f32
  RopeFn rope = nullptr;             // rope_neox_f32 or rope_norm_f32 (the model's RopeType)
  SwigluFn swiglu = nullptr;         // swiglu_f32
  std::string names;                 // "attention_f16_avx512, ..." (what was chosen)

  // Throws tessera::Error for an override that names no kernel of its op or one that cannot run here.
  static BoundOps bind(const KernelPolicy& policy, const DeviceCaps& caps, int64_t head_dim,
                       RopeType rope = RopeType::Neox);
};

}  // namespace tessera::ops
