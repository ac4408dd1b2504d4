// Backend selection by name.
#include "engine/backend/backend.h"

#include "core/error.h"
#include "engine/backend/host.h"

namespace tessera::engine {

#ifdef TESSERA_HAVE_VULKAN
std::shared_ptr<Backend> make_vulkan_backend(int device);  // vulkan/vk_backend.cpp
std::string list_vulkan_devices();                         // vulkan/vk_backend.cpp
#endif

std::string vulkan_devices() {
#ifdef TESSERA_HAVE_VULKAN
  return list_vulkan_devices();
#else
  throw_error("this build has no Vulkan backend (configured with -DTESSERA_VULKAN=OFF, or without glslang, spirv-val or the Vulkan headers: see scripts/setup_lavapipe.sh)");
#endif
}

std::string backend_names() {
#ifdef TESSERA_HAVE_VULKAN
  return "cpu, ref, vulkan";
#else
  return "cpu, ref";
#endif
}

std::shared_ptr<Backend> make_backend(const std::string& name, int device) {
  if (name == "cpu") return make_cpu_backend();
  if (name == "ref") return make_ref_backend();
#ifdef TESSERA_HAVE_VULKAN
  if (name == "vulkan") return make_vulkan_backend(device);
#endif
  throw_error("unknown backend '{}' (this build has: {})", name, backend_names());
}

}  // namespace tessera::engine
