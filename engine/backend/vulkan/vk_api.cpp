// dlopen of the Vulkan loader and the function table (see vk_api.h).
#include "engine/backend/vulkan/vk_api.h"

#include <dlfcn.h>

#include <mutex>

#include "core/error.h"

namespace tessera::vk {

Fns fn;

namespace {
void* g_lib = nullptr;
std::string g_why;
VkInstance g_instance = VK_NULL_HANDLE;
}  // namespace

bool load_loader(std::string* why) {
  static std::once_flag once;
  std::call_once(once, [] {
    g_lib = dlopen("libvulkan.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!g_lib) {
      g_why = "the Vulkan loader libvulkan.so.1 is not installed (" + std::string(dlerror()) +
              "); on a machine without a GPU run through scripts/lavapipe.sh";
      return;
    }
    fn.vkGetInstanceProcAddr = reinterpret_cast<PFN_vkGetInstanceProcAddr>(dlsym(g_lib, "vkGetInstanceProcAddr"));
    if (!fn.vkGetInstanceProcAddr) {
      g_why = "libvulkan.so.1 has no vkGetInstanceProcAddr";
      return;
    }
    fn.vkCreateInstance = reinterpret_cast<PFN_vkCreateInstance>(fn.vkGetInstanceProcAddr(nullptr, "vkCreateInstance"));
    fn.vkEnumerateInstanceVersion =
        reinterpret_cast<PFN_vkEnumerateInstanceVersion>(fn.vkGetInstanceProcAddr(nullptr, "vkEnumerateInstanceVersion"));
  });
  if (why) *why = g_why;
  return fn.vkCreateInstance != nullptr;
}

VkInstance instance() {
  static std::once_flag once;
  static std::string error;
  std::call_once(once, [] {
    std::string why;
    if (!load_loader(&why)) {
      error = why;
      return;
    }
    uint32_t version = VK_API_VERSION_1_0;
    if (fn.vkEnumerateInstanceVersion) fn.vkEnumerateInstanceVersion(&version);
    if (version < VK_API_VERSION_1_2) {
      error = "the Vulkan loader offers only Vulkan 1.0/1.1; Tessera needs 1.2";
      return;
    }
    VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
    app.pApplicationName = "tessera";
    app.apiVersion = VK_API_VERSION_1_3;
    VkInstanceCreateInfo ci{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
    ci.pApplicationInfo = &app;
    const VkResult r = fn.vkCreateInstance(&ci, nullptr, &g_instance);
    if (r != VK_SUCCESS) {
      error = std::string("vkCreateInstance failed: ") + result_name(r);
      return;
    }
#define TESSERA_VK_LOAD(name) fn.name = reinterpret_cast<PFN_##name>(fn.vkGetInstanceProcAddr(g_instance, #name));
    TESSERA_VK_INSTANCE_FNS(TESSERA_VK_LOAD)
#undef TESSERA_VK_LOAD
  });
  if (!g_instance) throw_error("vulkan: {}", error);
  return g_instance;
}

void load_device_fns(VkDevice dev) {
#define TESSERA_VK_LOAD(name) fn.name = reinterpret_cast<PFN_##name>(fn.vkGetDeviceProcAddr(dev, #name));
  TESSERA_VK_DEVICE_FNS(TESSERA_VK_LOAD)
#undef TESSERA_VK_LOAD
}

const char* result_name(VkResult r) {
  switch (r) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_TIMEOUT: return "VK_TIMEOUT";
    default: return "VkResult (other)";
  }
}

void check(VkResult r, const char* what) {
  if (r != VK_SUCCESS) throw_error("vulkan: {} failed: {} ({})", what, result_name(r), static_cast<int>(r));
}

}  // namespace tessera::vk
