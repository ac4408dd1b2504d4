// Setup-time probe of the lavapipe sysroot: loads the Vulkan loader with dlopen, finds the first device,
// and checks (never by waiting for a failure: old lavapipe accepts coopmat SPIR-V and writes zeros) that
// it offers VK_KHR_cooperative_matrix with a subgroup-scope f16 x f16 -> f32 shape. Prints what it saw;
// exit 0 when the extension and such a shape are there, 1 otherwise.
#define VK_NO_PROTOTYPES
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vulkan/vulkan.h>

#define LOAD(name) PFN_##name name = (PFN_##name)gipa(inst, #name)

int main(void) {
  void* lib = dlopen("libvulkan.so.1", RTLD_NOW);
  if (!lib) { fprintf(stderr, "probe: %s\n", dlerror()); return 1; }
  PFN_vkGetInstanceProcAddr gipa = (PFN_vkGetInstanceProcAddr)dlsym(lib, "vkGetInstanceProcAddr");
  VkInstance inst = VK_NULL_HANDLE;
  LOAD(vkCreateInstance);
  VkApplicationInfo app = {VK_STRUCTURE_TYPE_APPLICATION_INFO, NULL, "probe", 1, NULL, 0, VK_API_VERSION_1_3};
  VkInstanceCreateInfo ici = {VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, NULL, 0, &app, 0, NULL, 0, NULL};
  if (vkCreateInstance(&ici, NULL, &inst) != VK_SUCCESS) { fprintf(stderr, "probe: no instance\n"); return 1; }
  LOAD(vkEnumeratePhysicalDevices);
  LOAD(vkGetPhysicalDeviceProperties);
  LOAD(vkEnumerateDeviceExtensionProperties);
  LOAD(vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR);
  uint32_t n = 1;
  VkPhysicalDevice pd;
  if (vkEnumeratePhysicalDevices(inst, &n, &pd) < 0 || n == 0) { fprintf(stderr, "probe: no device\n"); return 1; }
  VkPhysicalDeviceProperties props;
  vkGetPhysicalDeviceProperties(pd, &props);
  printf("device: %s, driver %u.%u.%u\n", props.deviceName, VK_VERSION_MAJOR(props.driverVersion),
         VK_VERSION_MINOR(props.driverVersion), VK_VERSION_PATCH(props.driverVersion));
  uint32_t ne = 0;
  vkEnumerateDeviceExtensionProperties(pd, NULL, &ne, NULL);
  VkExtensionProperties* ext = calloc(ne, sizeof *ext);
  vkEnumerateDeviceExtensionProperties(pd, NULL, &ne, ext);
  int has = 0;
  for (uint32_t i = 0; i < ne; ++i) has |= strcmp(ext[i].extensionName, VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME) == 0;
  printf("VK_KHR_cooperative_matrix: %s\n", has ? "yes" : "no");
  if (!has || !vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR) return 1;
  uint32_t nc = 0;
  vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR(pd, &nc, NULL);
  VkCooperativeMatrixPropertiesKHR* cm = calloc(nc, sizeof *cm);
  for (uint32_t i = 0; i < nc; ++i) cm[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR;
  vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR(pd, &nc, cm);
  int f16f32 = 0;
  for (uint32_t i = 0; i < nc; ++i) {
    printf("coopmat %ux%ux%u A%d B%d C%d R%d scope %d\n", cm[i].MSize, cm[i].NSize, cm[i].KSize, cm[i].AType,
           cm[i].BType, cm[i].CType, cm[i].ResultType, cm[i].scope);
    f16f32 |= cm[i].AType == VK_COMPONENT_TYPE_FLOAT16_KHR && cm[i].BType == VK_COMPONENT_TYPE_FLOAT16_KHR &&
              cm[i].ResultType == VK_COMPONENT_TYPE_FLOAT32_KHR && cm[i].scope == VK_SCOPE_SUBGROUP_KHR;
  }
  printf("f16 x f16 -> f32 subgroup shape: %s\n", f16f32 ? "yes" : "no");
  return f16f32 ? 0 : 1;
}
