// Static resources of every HIP kernel per architecture, as clang reported them when it compiled the
// embedded code objects (-Rpass-analysis=kernel-resource-usage): the budget test and
// `tessera kernels list --resources` read them.
#pragma once
#include <string>
#include <vector>

namespace tessera::engine::hipdev {

struct KernelResources {
  std::string kernel, arch;
  int sgprs = -1, vgprs = -1, scratch = -1, occupancy = -1, sgpr_spill = -1, vgpr_spill = -1, lds = -1;
  bool dynamic_stack = false;
};

// Empty in a build without the HIP device compiler.
std::vector<KernelResources> kernel_resources();

}  // namespace tessera::engine::hipdev
