// One Vulkan device as the backend uses it: the device list (`tessera devices`), buffers (device-local;
// on unified memory host-visible device-local and mapped, so no staging copies), compute pipelines
// from the embedded SPIR-V, one descriptor set layout shared by every shader, and one-shot submits.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "engine/backend/vulkan/vk_api.h"

namespace tessera::vk {

struct DeviceInfo {
  int index = 0;
  std::string name, type, driver;  // type: "discrete", "integrated", "cpu", ...
  uint32_t api = 0;
  uint64_t device_local_bytes = 0;
  bool host_visible_device_local = false;  // unified memory (or resizable BAR): no staging needed
  uint32_t subgroup_size = 0;
  uint32_t max_subgroup_size = 0;          // the largest a shader may get (subgroup size control), else subgroup_size
  bool subgroup_arith = false;  // subgroup arithmetic in compute shaders
  uint32_t max_shared_bytes = 0;           // maxComputeSharedMemorySize (workgroup shared memory)
  bool coopmat = false;                    // VK_KHR_cooperative_matrix
  std::vector<std::string> coopmat_shapes; // "8x8x8 f16*f16->f32 subgroup"
  bool int_dot = false;                    // VK_KHR_shader_integer_dot_product
  // The batch matmul's cooperative-matrix tile (shaders/matmul_tiled.comp): an f16 x f16 -> f32
  // subgroup shape of the properties query with M, N <= 32 and K dividing 32, on a device with the
  // cooperativeMatrix and shaderFloat16 features and the shared memory it takes; 0 without one (the
  // twin on plain shared memory runs then). The device is made with the extension only then.
  uint32_t coop_m = 0, coop_n = 0, coop_k = 0;
  std::string batch_matmul() const;        // which batch matmul runs here, in words
  std::string describe() const;            // the lines `tessera devices` prints for it
};

// Every device the loader offers; throws tessera::Error (a clear reason) without a loader or instance.
std::vector<DeviceInfo> list_devices();
// The device --device picks by default: the first GPU, else the first device.
int default_device(const std::vector<DeviceInfo>& devices);

class Device;

// A buffer with its memory; `map` is set when the memory is host-visible (then writes are memcpy).
// It keeps its device alive (weights and KV may outlive the backend object that made them).
struct Buf {
  std::shared_ptr<Device> dev;
  VkBuffer buf = VK_NULL_HANDLE;
  VkDeviceMemory mem = VK_NULL_HANDLE;
  uint8_t* map = nullptr;
  size_t bytes = 0;
  ~Buf();
};

// Storage buffer bindings every shader's one descriptor set has (unused ones point at a dummy buffer).
inline constexpr int kBindings = 10;
inline constexpr uint32_t kPushBytes = 128;

class Device : public std::enable_shared_from_this<Device> {
 public:
  explicit Device(int index);  // index into list_devices(); -1: default_device (always held by a shared_ptr)
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  const DeviceInfo& info() const { return info_; }
  VkDevice dev() const { return dev_; }
  VkQueue queue() const { return queue_; }
  uint32_t family() const { return family_; }
  VkDescriptorSetLayout set_layout() const { return set_layout_; }
  VkPipelineLayout pipeline_layout() const { return pipeline_layout_; }

  // n bytes (at least 16), zeroed. host: host-visible and mapped (readback, batch data); otherwise
  // device-local, mapped too when that memory is host-visible.
  std::shared_ptr<Buf> buffer(size_t bytes, bool host = false);
  // Copies between host memory and a buffer (memcpy when mapped, else through a staging buffer);
  // only while no recorded work uses the buffer.
  void write(Buf& b, size_t offset, const void* src, size_t n);
  void read(const Buf& b, size_t offset, void* dst, size_t n);
  // The compute pipeline of an embedded shader variant (made on first use), with specialization
  // constants 0, 1, ... set to `spec`.
  VkPipeline pipeline(const std::string& name, std::span<const uint32_t> spec = {});
  // Records with `record`, submits and waits.
  template <class F> void one_shot(F&& record) {
    VkCommandBuffer cb = begin_one_shot();
    record(cb);
    end_one_shot(cb);
  }
  // Submits a recorded command buffer and waits for it.
  void submit_wait(VkCommandBuffer cb);
  VkCommandPool pool() const { return pool_; }
  // Timestamps of the compute queue: valid bits (0: none) and nanoseconds per tick.
  uint32_t timestamp_bits() const { return timestamp_bits_; }
  double timestamp_period() const { return timestamp_period_; }

 private:
  VkCommandBuffer begin_one_shot();
  void end_one_shot(VkCommandBuffer cb);
  uint32_t memory_type(uint32_t bits, VkMemoryPropertyFlags want, VkMemoryPropertyFlags avoid) const;

  DeviceInfo info_;
  VkPhysicalDevice pd_ = VK_NULL_HANDLE;
  VkPhysicalDeviceMemoryProperties mem_{};
  VkDevice dev_ = VK_NULL_HANDLE;
  VkQueue queue_ = VK_NULL_HANDLE;
  uint32_t family_ = 0;
  uint32_t timestamp_bits_ = 0;
  double timestamp_period_ = 0;
  VkCommandPool pool_ = VK_NULL_HANDLE;
  VkFence fence_ = VK_NULL_HANDLE;
  VkDescriptorSetLayout set_layout_ = VK_NULL_HANDLE;
  VkPipelineLayout pipeline_layout_ = VK_NULL_HANDLE;
  std::map<std::string, VkPipeline> pipelines_;
  std::mutex mu_;  // pipelines_ and one-shot submits
};

}  // namespace tessera::vk
