// Backend selection by name.
#include "engine/backend/backend.h"

#include "core/error.h"
#include "engine/backend/host.h"

namespace tessera::engine {

#ifdef TESSERA_HAVE_VULKAN
std::shared_ptr<Backend> make_vulkan_backend(int device);  // vulkan/vk_backend.cpp
std::string list_vulkan_devices();                         // vulkan/vk_backend.cpp
#endif

#ifdef TESSERA_HAVE_HIP_BACKEND
std::shared_ptr<Backend> make_hip_backend(int device);  // hip/hip_backend.cpp
std::shared_ptr<Backend> make_hip_emu_backend();        // hip/hip_backend.cpp
namespace hipdev {
std::string list_runtime_devices();  // hip/hip_runtime.cpp
}
#endif

std::string hip_devices() {
#ifdef TESSERA_HAVE_HIP_BACKEND
  return hipdev::list_runtime_devices();
#else
  throw_error("this build has no HIP backend (configured with -DTESSERA_HIP=OFF, or without Boost.Context: see scripts/setup.sh)");
#endif
}

std::string vulkan_devices() {
#ifdef TESSERA_HAVE_VULKAN
  return list_vulkan_devices();
#else
  throw_error("this build has no Vulkan backend (configured with -DTESSERA_VULKAN=OFF, or without glslang, spirv-val or the Vulkan headers: see scripts/setup_lavapipe.sh)");
#endif
}

std::string backend_names() {
  std::string s = "cpu, ref";
#ifdef TESSERA_HAVE_VULKAN
  s += ", vulkan";
#endif
#ifdef TESSERA_HAVE_HIP_BACKEND
  s += ", hip, hip-emu";
#endif
  return s;
}

std::shared_ptr<Backend> make_backend(const std::string& name, int device) {
  if (name == "cpu") return make_cpu_backend();
  if (name == "ref") return make_ref_backend();
#ifdef TESSERA_HAVE_VULKAN
  if (name == "vulkan") return make_vulkan_backend(device);
#endif
#ifdef TESSERA_HAVE_HIP_BACKEND
  if (name == "hip") return make_hip_backend(device);
  if (name == "hip-emu") return make_hip_emu_backend();
#endif
  throw_error("unknown backend '{}' (this build has: {})", name, backend_names());
}

}  // namespace tessera::engine
