// tessera kernels list [--markdown]: every registered kernel (name, backend, op, weight and activation
// types, variant, priority, whether this CPU runs it, whether dispatch picks it by default): the matmul
// kernels, then those of the smaller ops (attention, activation quantization, element-wise).
// --markdown prints the lists and an op x type x variant coverage table (docs/kernels.md is made from it).
#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "kernels/registry.h"
#ifdef TESSERA_HAVE_HIP_BACKEND
#include "engine/backend/hip/hip_resources.h"
#endif
#include "tools/cli/args.h"
#include "tools/cli/commands.h"

namespace tessera::cli {

namespace {

using namespace tessera::ops;

constexpr const char* kUsage =
    "usage: tessera kernels list [--markdown | --resources]\n"
    "\n"
    "Lists every registered kernel: name, backend, op, weight and activation types, variant, priority,\n"
    "whether this CPU runs it and whether dispatch picks it by default. --markdown adds the op x type x\n"
    "variant coverage table (docs/kernels.md is made from it). --resources prints the HIP kernels' static\n"
    "resources per GPU architecture (VGPRs, SGPRs, LDS, scratch, spills, occupancy), as clang reported\n"
    "them for the code objects embedded in this binary.\n";

// One line per HIP kernel and architecture.
void print_resources() {
#ifdef TESSERA_HAVE_HIP_BACKEND
  const auto rs = engine::hipdev::kernel_resources();
  if (rs.empty()) throw_error("this build has no HIP code objects (no clang that targets amdgcn at configure time)");
  for (const auto& r : rs)
    std::printf("%-18s %-8s vgprs %3d  sgprs %3d  lds %6d  scratch %d  spills %d/%d  occupancy %2d waves/SIMD%s\n",
                r.kernel.c_str(), r.arch.c_str(), r.vgprs, r.sgprs, r.lds, r.scratch, r.vgpr_spill, r.sgpr_spill, r.occupancy,
                r.dynamic_stack ? "  dynamic stack" : "");
#else
  throw_error("this build has no HIP backend (configured with -DTESSERA_HIP=OFF, or without Boost.Context)");
#endif
}

// A typical shape of each op (a 2048-wide row; K-quants need 256-multiples), to ask supports().
MatmulShape typical_shape(const MatmulKernel& k) { return MatmulShape{k.wtype, 2048, 768, k.op == Op::Gemv ? 1 : 64}; }

bool is_default(const MatmulKernel& k, const DeviceCaps& caps) {
  try {
    return &KernelPolicy().choose(typical_shape(k), caps) == &k;
  } catch (const Error&) {
    return false;
  }
}

// Rows of a typical length for the smaller ops' supports() (attention: head_dim 128).
int64_t typical_row(const OpKernel& k) { return k.op == "attention_f16" ? 128 : 0; }

bool is_default(const OpKernel& k, const DeviceCaps& caps) {
  try {
    return &KernelPolicy().choose_op(k.op, caps, typical_row(k)) == &k;
  } catch (const Error&) {
    return false;
  }
}

void print_plain(const DeviceCaps& caps) {
  std::printf("device: %s\n", caps.describe().c_str());
  std::printf("%-36s %-7s %-5s %-7s %-5s %-13s %4s %-9s %s\n", "name", "backend", "op", "weight", "act", "variant",
              "prio", "supported", "default");
  for (const MatmulKernel& k : matmul_kernels()) {
    const bool sup = kernel_supports(k, typical_shape(k), caps);
    std::printf("%-36s %-7s %-5s %-7s %-5s %-13s %4d %-9s %s\n", k.name.c_str(),
                std::string(backend_name(k.backend)).c_str(), std::string(op_name(k.op)).c_str(),
                std::string(type_name(k.wtype)).c_str(), std::string(act_type_name(k.act)).c_str(), k.variant.c_str(),
                k.priority, sup ? "yes" : "no", is_default(k, caps) ? "*" : "");
  }
  for (const OpKernel& k : op_kernels()) {
    const bool sup = op_kernel_supports(k, caps, typical_row(k));
    std::printf("%-36s %-7s %-19s %-13s %4d %-9s %s\n", k.name.c_str(), std::string(backend_name(k.backend)).c_str(),
                k.op.c_str(), k.variant.c_str(), k.priority, sup ? "yes" : "no", is_default(k, caps) ? "*" : "");
  }
}

void print_markdown(const DeviceCaps& caps) {
  std::printf("Kernels registered in this build (`tessera kernels list --markdown`). \"here\" = supported on the\n");
  std::printf("machine that generated this table (%s); \"default\" = what dispatch picks\n", caps.describe().c_str());
  std::printf("for a 2048-wide row (gemv: 1 token, gemm: 64 tokens) with no override.\n\n");
  // coverage: (op, weight type, activation type) -> variants, in registration order of first appearance
  std::set<std::string> variants;
  std::vector<std::tuple<Op, GgmlType, ActType>> rows;
  std::map<std::tuple<Op, GgmlType, ActType>, std::set<std::string>> have;
  for (const MatmulKernel& k : matmul_kernels()) {
    variants.insert(k.variant);
    const auto key = std::make_tuple(k.op, k.wtype, k.act);
    if (!have.count(key)) rows.push_back(key);
    have[key].insert(k.variant);
  }
  std::sort(rows.begin(), rows.end());
  std::printf("## Coverage (op x weight type x variant)\n\n| op | weight | activation |");
  for (const std::string& v : variants) std::printf(" %s |", v.c_str());
  std::printf("\n|---|---|---|");
  for (size_t i = 0; i < variants.size(); ++i) std::printf("---|");
  std::printf("\n");
  for (const auto& [op, t, act] : rows) {
    const auto& vs = have[{op, t, act}];
    std::printf("| %s | %s | %s |", std::string(op_name(op)).c_str(), std::string(type_name(t)).c_str(),
                std::string(act_type_name(act)).c_str());
    for (const std::string& v : variants) std::printf(" %s |", vs.count(v) ? "x" : "");
    std::printf("\n");
  }
  std::printf("\n## All kernels\n\n| name | backend | op | weight | activation | variant | priority | here | default |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  for (const MatmulKernel& k : matmul_kernels()) {
    const bool sup = kernel_supports(k, typical_shape(k), caps);
    std::printf("| `%s` | %s | %s | %s | %s | %s | %d | %s | %s |\n", k.name.c_str(),
                std::string(backend_name(k.backend)).c_str(), std::string(op_name(k.op)).c_str(),
                std::string(type_name(k.wtype)).c_str(), std::string(act_type_name(k.act)).c_str(), k.variant.c_str(),
                k.priority, sup ? "yes" : "no", is_default(k, caps) ? "yes" : "");
  }
  std::printf("\n## Attention, activation quantization, element-wise ops\n\n");
  std::printf("Named `<op key>_<variant>`; \"default\" for attention with head_dim 128.\n\n");
  std::printf("| name | backend | op key | variant | priority | here | default |\n|---|---|---|---|---|---|---|\n");
  for (const OpKernel& k : op_kernels()) {
    const bool sup = op_kernel_supports(k, caps, typical_row(k));
    std::printf("| `%s` | %s | %s | %s | %d | %s | %s |\n", k.name.c_str(), std::string(backend_name(k.backend)).c_str(),
                k.op.c_str(), k.variant.c_str(), k.priority, sup ? "yes" : "no", is_default(k, caps) ? "yes" : "");
  }
}

}  // namespace

int cmd_kernels(int argc, char** argv) {
  Args args(argc, argv);
  if (args.flag({"-h", "--help"})) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  const bool markdown = args.flag({"--markdown", "--md"});
  const bool resources = args.flag({"--resources"});
  const auto pos = args.positionals();
  args.finish();
  if (pos.size() != 1 || pos[0] != "list") throw_error("{}", kUsage);
  if (resources) {
    print_resources();
    return 0;
  }
  const DeviceCaps caps = host_caps();
  if (markdown) print_markdown(caps);
  else print_plain(caps);
  return 0;
}

}  // namespace tessera::cli
