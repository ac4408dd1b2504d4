// Device list, device creation, buffers, pipelines and one-shot submits (see vk_device.h).
#include "engine/backend/vulkan/vk_device.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "engine/backend/vulkan/vk_shaders.h"

namespace tessera::vk {

namespace {

const char* type_name(VkPhysicalDeviceType t) {
  switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
    default: return "other";
  }
}

const char* component_name(VkComponentTypeKHR c) {
  switch (c) {
    case VK_COMPONENT_TYPE_FLOAT16_KHR: return "f16";
    case VK_COMPONENT_TYPE_FLOAT32_KHR: return "f32";
    case VK_COMPONENT_TYPE_SINT8_KHR: return "s8";
    case VK_COMPONENT_TYPE_UINT8_KHR: return "u8";
    case VK_COMPONENT_TYPE_SINT32_KHR: return "s32";
    case VK_COMPONENT_TYPE_UINT32_KHR: return "u32";
    default: return "?";
  }
}

// Workgroup memory of shaders/matmul_tiled.comp on cooperative matrices of TM x TN: f16 hi and lo
// tiles of 4 TM and 4 TN rows of 40 values, and one TM x TN f32 tile per subgroup (4).
uint32_t coop_shared_bytes(uint32_t m, uint32_t n) { return 2 * (4 * m + 4 * n) * 40 * 2 + 4 * m * n * 4; }

std::vector<VkPhysicalDevice> physical_devices() {
  VkInstance inst = instance();
  uint32_t n = 0;
  check(fn.vkEnumeratePhysicalDevices(inst, &n, nullptr), "vkEnumeratePhysicalDevices");
  std::vector<VkPhysicalDevice> pds(n);
  check(fn.vkEnumeratePhysicalDevices(inst, &n, pds.data()), "vkEnumeratePhysicalDevices");
  pds.resize(n);
  return pds;
}

DeviceInfo describe_device(VkPhysicalDevice pd, int index) {
  DeviceInfo d;
  d.index = index;
  VkPhysicalDeviceSubgroupProperties sub{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
  VkPhysicalDeviceDriverProperties drv{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
  VkPhysicalDeviceSubgroupSizeControlProperties ssc{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES};
  sub.pNext = &drv;
  VkPhysicalDeviceProperties p1;
  fn.vkGetPhysicalDeviceProperties(pd, &p1);
  if (p1.apiVersion >= VK_API_VERSION_1_3) drv.pNext = &ssc;  // core in 1.3
  VkPhysicalDeviceProperties2 p2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
  p2.pNext = &sub;
  fn.vkGetPhysicalDeviceProperties2(pd, &p2);
  d.name = p2.properties.deviceName;
  d.type = type_name(p2.properties.deviceType);
  d.driver = fmt::format("{} {}", drv.driverName, drv.driverInfo);
  d.api = p2.properties.apiVersion;
  d.subgroup_size = sub.subgroupSize;
  d.max_subgroup_size = std::max(sub.subgroupSize, ssc.maxSubgroupSize);
  d.subgroup_arith = (sub.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                     (sub.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
  d.max_shared_bytes = p2.properties.limits.maxComputeSharedMemorySize;
  VkPhysicalDeviceMemoryProperties mem;
  fn.vkGetPhysicalDeviceMemoryProperties(pd, &mem);
  for (uint32_t h = 0; h < mem.memoryHeapCount; ++h)
    if (mem.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) d.device_local_bytes += mem.memoryHeaps[h].size;
  for (uint32_t i = 0; i < mem.memoryTypeCount; ++i) {
    const VkMemoryPropertyFlags f = mem.memoryTypes[i].propertyFlags;
    const VkMemoryPropertyFlags both = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                       VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    if ((f & both) == both) d.host_visible_device_local = true;
  }
  uint32_t ne = 0;
  fn.vkEnumerateDeviceExtensionProperties(pd, nullptr, &ne, nullptr);
  std::vector<VkExtensionProperties> ext(ne);
  fn.vkEnumerateDeviceExtensionProperties(pd, nullptr, &ne, ext.data());
  for (const VkExtensionProperties& e : ext) {
    if (std::strcmp(e.extensionName, VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME) == 0) d.coopmat = true;
    if (std::strcmp(e.extensionName, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME) == 0) d.int_dot = true;
  }
  if (d.api >= VK_API_VERSION_1_3) d.int_dot = true;  // core in 1.3
  // The shapes come from the properties query, never from trying a shader (old lavapipe accepts
  // coopmat SPIR-V and writes zeros).
  auto props = reinterpret_cast<PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR>(
      fn.vkGetInstanceProcAddr(instance(), "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR"));
  if (d.coopmat && props) {
    uint32_t n = 0;
    props(pd, &n, nullptr);
    std::vector<VkCooperativeMatrixPropertiesKHR> cm(n, {VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR});
    props(pd, &n, cm.data());
    for (const auto& c : cm)
      d.coopmat_shapes.push_back(fmt::format("{}x{}x{} {}*{}->{}{}", c.MSize, c.NSize, c.KSize, component_name(c.AType),
                                             component_name(c.BType), component_name(c.ResultType),
                                             c.scope == VK_SCOPE_SUBGROUP_KHR ? " subgroup" : ""));
    // the batch matmul's tile: needs the features too (a listed shape alone is not enough)
    VkPhysicalDeviceCooperativeMatrixFeaturesKHR cf{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR};
    VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    cf.pNext = &f12;
    VkPhysicalDeviceFeatures2 f2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    f2.pNext = &cf;
    if (d.api >= VK_API_VERSION_1_2) fn.vkGetPhysicalDeviceFeatures2(pd, &f2);
    const VkPhysicalDeviceLimits& lim = p2.properties.limits;
    const uint32_t wg = 4 * d.max_subgroup_size;  // the shader's workgroup: at least 4 subgroups
    if (cf.cooperativeMatrix && f12.shaderFloat16 && d.subgroup_size > 0 && wg <= lim.maxComputeWorkGroupSize[0] &&
        wg <= lim.maxComputeWorkGroupInvocations)
      for (const auto& c : cm) {
        const bool fits = c.AType == VK_COMPONENT_TYPE_FLOAT16_KHR && c.BType == VK_COMPONENT_TYPE_FLOAT16_KHR &&
                          c.CType == VK_COMPONENT_TYPE_FLOAT32_KHR && c.ResultType == VK_COMPONENT_TYPE_FLOAT32_KHR &&
                          c.scope == VK_SCOPE_SUBGROUP_KHR && c.MSize <= 32 && c.NSize <= 32 && c.KSize > 0 &&
                          c.KSize <= 32 && 32 % c.KSize == 0 && !c.saturatingAccumulation &&
                          coop_shared_bytes(c.MSize, c.NSize) <= d.max_shared_bytes;
        if (fits && c.MSize * c.NSize * c.KSize > d.coop_m * d.coop_n * d.coop_k) {  // the largest tile
          d.coop_m = c.MSize;
          d.coop_n = c.NSize;
          d.coop_k = c.KSize;
        }
      }
  }
  return d;
}

}  // namespace

std::string DeviceInfo::describe() const {
  std::string s = fmt::format("{}: {} ({}, Vulkan {}.{}.{}, {})\n", index, name, type, VK_API_VERSION_MAJOR(api),
                              VK_API_VERSION_MINOR(api), VK_API_VERSION_PATCH(api), driver);
  s += fmt::format("   memory: {:.1f} GiB device-local{}; subgroup size {}; integer dot product: {}\n",
                   static_cast<double>(device_local_bytes) / (1ull << 30),
                   host_visible_device_local ? ", host-visible (no staging)" : "", subgroup_size, int_dot ? "yes" : "no");
  s += fmt::format("   VK_KHR_cooperative_matrix: {}", coopmat ? "yes" : "no");
  for (size_t i = 0; i < coopmat_shapes.size(); ++i) s += (i ? ", " : " (") + coopmat_shapes[i];
  s += coopmat_shapes.empty() ? "\n" : ")\n";
  s += fmt::format("   batch matmul: {}\n", batch_matmul());
  return s;
}

std::string DeviceInfo::batch_matmul() const {
  if (coop_m == 0) return "tiled on shared memory, f32 (32x32x32 tiles; no usable f16*f16->f32 cooperative matrix)";
  return fmt::format("cooperative matrices {}x{}x{} f16*f16->f32 (hi/lo f16 pairs, {}x{}x32 tiles, workgroups of {})", coop_m,
                     coop_n, coop_k, 4 * coop_m, 4 * coop_n, 4 * max_subgroup_size);
}

std::vector<DeviceInfo> list_devices() {
  std::vector<DeviceInfo> out;
  const std::vector<VkPhysicalDevice> pds = physical_devices();
  for (size_t i = 0; i < pds.size(); ++i) out.push_back(describe_device(pds[i], static_cast<int>(i)));
  return out;
}

int default_device(const std::vector<DeviceInfo>& devices) {
  for (const DeviceInfo& d : devices)
    if (d.type == "discrete" || d.type == "integrated") return d.index;
  return 0;
}

Buf::~Buf() {
  if (!dev) return;
  if (map) fn.vkUnmapMemory(dev->dev(), mem);
  fn.vkDestroyBuffer(dev->dev(), buf, nullptr);
  fn.vkFreeMemory(dev->dev(), mem, nullptr);
}

Device::Device(int index) {
  const std::vector<VkPhysicalDevice> pds = physical_devices();
  if (pds.empty()) throw_error("vulkan: no Vulkan device found (the loader lists none)");
  std::vector<DeviceInfo> infos;
  for (size_t i = 0; i < pds.size(); ++i) infos.push_back(describe_device(pds[i], static_cast<int>(i)));
  if (index < 0) index = default_device(infos);
  if (index >= static_cast<int>(pds.size()))
    throw_error("vulkan: --device {}: there are {} Vulkan devices (see `tessera devices`)", index, pds.size());
  pd_ = pds[static_cast<size_t>(index)];
  info_ = infos[static_cast<size_t>(index)];
  fn.vkGetPhysicalDeviceMemoryProperties(pd_, &mem_);

  uint32_t nq = 0;
  fn.vkGetPhysicalDeviceQueueFamilyProperties(pd_, &nq, nullptr);
  std::vector<VkQueueFamilyProperties> qf(nq);
  fn.vkGetPhysicalDeviceQueueFamilyProperties(pd_, &nq, qf.data());
  family_ = UINT32_MAX;
  for (uint32_t i = 0; i < nq && family_ == UINT32_MAX; ++i)
    if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) family_ = i;
  if (family_ == UINT32_MAX) throw_error("vulkan: device {} has no compute queue", info_.name);
  timestamp_bits_ = qf[family_].timestampValidBits;
  VkPhysicalDeviceProperties props;
  fn.vkGetPhysicalDeviceProperties(pd_, &props);
  timestamp_period_ = props.limits.timestampPeriod;

  const float prio = 1.0f;
  VkDeviceQueueCreateInfo qi{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
  qi.queueFamilyIndex = family_;
  qi.queueCount = 1;
  qi.pQueuePriorities = &prio;
  // glslang may emit LocalSizeId, which needs maintenance4 (core in 1.3)
  VkPhysicalDeviceVulkan13Features f13{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES};
  VkPhysicalDeviceFeatures2 f2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
  if (info_.api >= VK_API_VERSION_1_3) {
    f2.pNext = &f13;
    fn.vkGetPhysicalDeviceFeatures2(pd_, &f2);
    f13 = VkPhysicalDeviceVulkan13Features{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES};
    VkPhysicalDeviceVulkan13Features have{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES};
    VkPhysicalDeviceFeatures2 q{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    q.pNext = &have;
    fn.vkGetPhysicalDeviceFeatures2(pd_, &q);
    f13.maintenance4 = have.maintenance4;
  }
  f2.features = VkPhysicalDeviceFeatures{};
  VkDeviceCreateInfo di{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
  di.queueCreateInfoCount = 1;
  di.pQueueCreateInfos = &qi;
  di.pNext = &f2;
  // cooperative matrices (and f16 arithmetic) only where describe_device found a usable shape
  VkPhysicalDeviceCooperativeMatrixFeaturesKHR cm{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR};
  VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
  const char* cm_ext = VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME;
  if (info_.coop_m > 0) {
    cm.cooperativeMatrix = VK_TRUE;
    f12.shaderFloat16 = VK_TRUE;
    cm.pNext = &f12;
    f12.pNext = f2.pNext;
    f2.pNext = &cm;
    di.enabledExtensionCount = 1;
    di.ppEnabledExtensionNames = &cm_ext;
  }
  check(fn.vkCreateDevice(pd_, &di, nullptr, &dev_), "vkCreateDevice");
  load_device_fns(dev_);
  fn.vkGetDeviceQueue(dev_, family_, 0, &queue_);

  VkCommandPoolCreateInfo pi{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
  pi.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
  pi.queueFamilyIndex = family_;
  check(fn.vkCreateCommandPool(dev_, &pi, nullptr, &pool_), "vkCreateCommandPool");
  VkFenceCreateInfo fi{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  check(fn.vkCreateFence(dev_, &fi, nullptr, &fence_), "vkCreateFence");

  VkDescriptorSetLayoutBinding b[kBindings];
  for (int i = 0; i < kBindings; ++i)
    b[i] = {static_cast<uint32_t>(i), VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, nullptr};
  VkDescriptorSetLayoutCreateInfo li{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
  li.bindingCount = kBindings;
  li.pBindings = b;
  check(fn.vkCreateDescriptorSetLayout(dev_, &li, nullptr, &set_layout_), "vkCreateDescriptorSetLayout");
  VkPushConstantRange pc{VK_SHADER_STAGE_COMPUTE_BIT, 0, kPushBytes};
  VkPipelineLayoutCreateInfo pli{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
  pli.setLayoutCount = 1;
  pli.pSetLayouts = &set_layout_;
  pli.pushConstantRangeCount = 1;
  pli.pPushConstantRanges = &pc;
  check(fn.vkCreatePipelineLayout(dev_, &pli, nullptr, &pipeline_layout_), "vkCreatePipelineLayout");
}

Device::~Device() {
  if (!dev_) return;
  fn.vkDeviceWaitIdle(dev_);
  for (auto& [name, p] : pipelines_) fn.vkDestroyPipeline(dev_, p, nullptr);
  fn.vkDestroyPipelineLayout(dev_, pipeline_layout_, nullptr);
  fn.vkDestroyDescriptorSetLayout(dev_, set_layout_, nullptr);
  fn.vkDestroyFence(dev_, fence_, nullptr);
  fn.vkDestroyCommandPool(dev_, pool_, nullptr);
  fn.vkDestroyDevice(dev_, nullptr);
}

uint32_t Device::memory_type(uint32_t bits, VkMemoryPropertyFlags want, VkMemoryPropertyFlags avoid) const {
  for (uint32_t i = 0; i < mem_.memoryTypeCount; ++i) {
    const VkMemoryPropertyFlags f = mem_.memoryTypes[i].propertyFlags;
    if ((bits & (1u << i)) && (f & want) == want && !(f & avoid)) return i;
  }
  return UINT32_MAX;
}

std::shared_ptr<Buf> Device::buffer(size_t bytes, bool host) {
  auto b = std::make_shared<Buf>();
  b->bytes = bytes;
  VkBufferCreateInfo bi{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
  bi.size = std::max<size_t>(16, (bytes + 15) / 16 * 16);
  bi.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  check(fn.vkCreateBuffer(dev_, &bi, nullptr, &b->buf), "vkCreateBuffer");
  VkMemoryRequirements req;
  fn.vkGetBufferMemoryRequirements(dev_, b->buf, &req);
  const VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
  const VkMemoryPropertyFlags dl = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
  uint32_t type = UINT32_MAX;
  if (host) {
    type = memory_type(req.memoryTypeBits, hv | VK_MEMORY_PROPERTY_HOST_CACHED_BIT, 0);
    if (type == UINT32_MAX) type = memory_type(req.memoryTypeBits, hv, 0);
  } else {
    // unified memory: device-local and host-visible, mapped, no staging
    type = memory_type(req.memoryTypeBits, dl | hv, 0);
    if (type == UINT32_MAX) type = memory_type(req.memoryTypeBits, dl, 0);
    if (type == UINT32_MAX) type = memory_type(req.memoryTypeBits, 0, 0);
  }
  if (type == UINT32_MAX) throw_error("vulkan: no memory type for a buffer of {} bytes", bytes);
  VkMemoryAllocateInfo ai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
  ai.allocationSize = req.size;
  ai.memoryTypeIndex = type;
  const VkResult r = fn.vkAllocateMemory(dev_, &ai, nullptr, &b->mem);
  if (r != VK_SUCCESS) {
    fn.vkDestroyBuffer(dev_, b->buf, nullptr);
    throw_error("vulkan: cannot allocate {} MiB of device memory: {}", bytes >> 20, result_name(r));
  }
  b->dev = shared_from_this();
  check(fn.vkBindBufferMemory(dev_, b->buf, b->mem, 0), "vkBindBufferMemory");
  if ((mem_.memoryTypes[type].propertyFlags & hv) == hv) {
    void* p = nullptr;
    check(fn.vkMapMemory(dev_, b->mem, 0, VK_WHOLE_SIZE, 0, &p), "vkMapMemory");
    b->map = static_cast<uint8_t*>(p);
    std::memset(b->map, 0, bi.size);
  } else {
    one_shot([&](VkCommandBuffer cb) { fn.vkCmdFillBuffer(cb, b->buf, 0, VK_WHOLE_SIZE, 0); });
  }
  return b;
}

void Device::write(Buf& b, size_t offset, const void* src, size_t n) {
  if (n == 0) return;
  if (offset + n > b.bytes) throw_error("vulkan: write of {} bytes at {} past a buffer of {}", n, offset, b.bytes);
  if (b.map) {
    std::memcpy(b.map + offset, src, n);
    return;
  }
  std::shared_ptr<Buf> st = buffer(n, true);
  std::memcpy(st->map, src, n);
  one_shot([&](VkCommandBuffer cb) {
    VkBufferCopy c{0, offset, n};
    fn.vkCmdCopyBuffer(cb, st->buf, b.buf, 1, &c);
  });
}

void Device::read(const Buf& b, size_t offset, void* dst, size_t n) {
  if (n == 0) return;
  if (offset + n > b.bytes) throw_error("vulkan: read of {} bytes at {} past a buffer of {}", n, offset, b.bytes);
  if (b.map) {
    std::memcpy(dst, b.map + offset, n);
    return;
  }
  std::shared_ptr<Buf> st = buffer(n, true);
  one_shot([&](VkCommandBuffer cb) {
    VkBufferCopy c{offset, 0, n};
    fn.vkCmdCopyBuffer(cb, b.buf, st->buf, 1, &c);
  });
  std::memcpy(dst, st->map, n);
}

VkPipeline Device::pipeline(const std::string& name, std::span<const uint32_t> spec) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string key = name;
  for (uint32_t v : spec) key += fmt::format(":{}", v);
  auto it = pipelines_.find(key);
  if (it != pipelines_.end()) return it->second;
  const std::span<const uint32_t> code = find_shader(name);
  if (code.empty()) throw_error("vulkan: no shader '{}' in this build", name);
  VkShaderModuleCreateInfo si{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
  si.codeSize = code.size() * 4;
  si.pCode = code.data();
  VkShaderModule mod;
  check(fn.vkCreateShaderModule(dev_, &si, nullptr, &mod), "vkCreateShaderModule");
  VkComputePipelineCreateInfo ci{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
  std::vector<VkSpecializationMapEntry> entries;
  for (uint32_t i = 0; i < spec.size(); ++i) entries.push_back({i, 4 * i, 4});
  const VkSpecializationInfo sp{static_cast<uint32_t>(entries.size()), entries.data(), spec.size() * 4, spec.data()};
  ci.stage = {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO, nullptr, 0, VK_SHADER_STAGE_COMPUTE_BIT, mod, "main",
              spec.empty() ? nullptr : &sp};
  ci.layout = pipeline_layout_;
  VkPipeline p;
  const VkResult r = fn.vkCreateComputePipelines(dev_, VK_NULL_HANDLE, 1, &ci, nullptr, &p);
  fn.vkDestroyShaderModule(dev_, mod, nullptr);
  check(r, "vkCreateComputePipelines");
  pipelines_[key] = p;
  return p;
}

VkCommandBuffer Device::begin_one_shot() {
  mu_.lock();
  VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  ai.commandPool = pool_;
  ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  ai.commandBufferCount = 1;
  VkCommandBuffer cb;
  check(fn.vkAllocateCommandBuffers(dev_, &ai, &cb), "vkAllocateCommandBuffers");
  VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
  fn.vkBeginCommandBuffer(cb, &bi);
  return cb;
}

void Device::end_one_shot(VkCommandBuffer cb) {
  fn.vkEndCommandBuffer(cb);
  VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
  si.commandBufferCount = 1;
  si.pCommandBuffers = &cb;
  check(fn.vkQueueSubmit(queue_, 1, &si, VK_NULL_HANDLE), "vkQueueSubmit");
  check(fn.vkQueueWaitIdle(queue_), "vkQueueWaitIdle");
  fn.vkFreeCommandBuffers(dev_, pool_, 1, &cb);
  mu_.unlock();
}

void Device::submit_wait(VkCommandBuffer cb) {
  std::lock_guard<std::mutex> lock(mu_);
  VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
  si.commandBufferCount = 1;
  si.pCommandBuffers = &cb;
  check(fn.vkResetFences(dev_, 1, &fence_), "vkResetFences");
  check(fn.vkQueueSubmit(queue_, 1, &si, fence_), "vkQueueSubmit");
  check(fn.vkWaitForFences(dev_, 1, &fence_, VK_TRUE, UINT64_MAX), "vkWaitForFences");
}

}  // namespace tessera::vk
