// Parses the resource remarks embedded with the code objects ("Function Name: x", then "VGPRs: 35" ...).
#include "engine/backend/hip/hip_resources.h"

#include <cstdlib>
#include <sstream>

#include "engine/backend/hip/hip_code_objects.h"

namespace tessera::engine::hipdev {

std::vector<KernelResources> kernel_resources() {
  std::vector<KernelResources> out;
  for (const CodeObject& co : code_objects()) {
    std::istringstream in(co.resources);
    std::string line;
    while (std::getline(in, line)) {
      const size_t colon = line.rfind(": ");
      if (colon == std::string::npos) continue;
      const std::string key = line.substr(0, colon), val = line.substr(colon + 2);
      if (key == "Function Name") {
        out.push_back({});
        out.back().kernel = val;
        out.back().arch = co.arch;
        continue;
      }
      if (out.empty()) continue;
      KernelResources& r = out.back();
      if (key == "Dynamic Stack") {
        r.dynamic_stack = val == "True";
        continue;
      }
      const int v = std::atoi(val.c_str());
      if (key == "SGPRs") r.sgprs = v;
      else if (key == "VGPRs") r.vgprs = v;
      else if (key.rfind("ScratchSize", 0) == 0) r.scratch = v;
      else if (key.rfind("Occupancy", 0) == 0) r.occupancy = v;
      else if (key == "SGPRs Spill") r.sgpr_spill = v;
      else if (key == "VGPRs Spill") r.vgpr_spill = v;
      else if (key.rfind("LDS Size", 0) == 0) r.lds = v;
    }
  }
  return out;
}

}  // namespace tessera::engine::hipdev
