// The `hip` device: the ROCm runtime (libamdhip64.so) loaded with dlopen, so the binary has no
// build-time ROCm dependency and runs everywhere; the kernels come from the code objects embedded at
// build time (hip_code_objects.h), the first one the device accepts (hipModuleLoadData refuses the
// others). Only the C entry points below are used; their ABI has been stable since ROCm 5.
#include <dlfcn.h>
#include <fmt/format.h>

#include <map>
#include <string>

#include "core/error.h"
#include "engine/backend/hip/hip_code_objects.h"
#include "engine/backend/hip/hip_device.h"

namespace tessera::engine::hipdev {

#ifndef TESSERA_HAVE_HIP
std::span<const CodeObject> code_objects() { return {}; }
#endif

namespace {

using hipError_t = int;
using hipModule_t = void*;
using hipFunction_t = void*;
constexpr int kH2D = 1, kD2H = 2, kD2D = 3;

struct Api {
  void* lib = nullptr;
  hipError_t (*hipInit)(unsigned) = nullptr;
  hipError_t (*hipGetDeviceCount)(int*) = nullptr;
  hipError_t (*hipSetDevice)(int) = nullptr;
  hipError_t (*hipDeviceGetName)(char*, int, int) = nullptr;
  hipError_t (*hipDeviceTotalMem)(size_t*, int) = nullptr;
  hipError_t (*hipMalloc)(void**, size_t) = nullptr;
  hipError_t (*hipFree)(void*) = nullptr;
  hipError_t (*hipMemset)(void*, int, size_t) = nullptr;
  hipError_t (*hipMemcpy)(void*, const void*, size_t, int) = nullptr;
  hipError_t (*hipDeviceSynchronize)() = nullptr;
  hipError_t (*hipModuleLoadData)(hipModule_t*, const void*) = nullptr;
  hipError_t (*hipModuleGetFunction)(hipFunction_t*, hipModule_t, const char*) = nullptr;
  hipError_t (*hipModuleLaunchKernel)(hipFunction_t, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                                      void*, void**, void**) = nullptr;
  const char* (*hipGetErrorString)(hipError_t) = nullptr;
};

template <class F>
void sym(void* lib, F& f, const char* name) {
  f = reinterpret_cast<F>(dlsym(lib, name));
  if (!f) throw_error("hip: libamdhip64.so has no {} (ROCm too old?)", name);
}

// The runtime, loaded once; throws saying why it cannot be.
const Api& api() {
  static const Api a = [] {
    Api r;
    for (const char* name : {"libamdhip64.so", "libamdhip64.so.6", "libamdhip64.so.5", "/opt/rocm/lib/libamdhip64.so"})
      if ((r.lib = dlopen(name, RTLD_NOW | RTLD_LOCAL))) break;
    if (!r.lib)
      throw_error("hip: the ROCm runtime (libamdhip64.so) was not found; install ROCm (6.x) or add its lib folder "
                  "to LD_LIBRARY_PATH (e.g. /opt/rocm/lib), or use --backend hip-emu (the kernels on the CPU) or vulkan");
    sym(r.lib, r.hipInit, "hipInit");
    sym(r.lib, r.hipGetDeviceCount, "hipGetDeviceCount");
    sym(r.lib, r.hipSetDevice, "hipSetDevice");
    sym(r.lib, r.hipDeviceGetName, "hipDeviceGetName");
    sym(r.lib, r.hipDeviceTotalMem, "hipDeviceTotalMem");
    sym(r.lib, r.hipMalloc, "hipMalloc");
    sym(r.lib, r.hipFree, "hipFree");
    sym(r.lib, r.hipMemset, "hipMemset");
    sym(r.lib, r.hipMemcpy, "hipMemcpy");
    sym(r.lib, r.hipDeviceSynchronize, "hipDeviceSynchronize");
    sym(r.lib, r.hipModuleLoadData, "hipModuleLoadData");
    sym(r.lib, r.hipModuleGetFunction, "hipModuleGetFunction");
    sym(r.lib, r.hipModuleLaunchKernel, "hipModuleLaunchKernel");
    sym(r.lib, r.hipGetErrorString, "hipGetErrorString");
    return r;
  }();
  return a;
}

void check(hipError_t e, const char* what) {
  if (e != 0) throw_error("hip: {} failed: {} ({})", what, api().hipGetErrorString(e), e);
}

int device_count() {
  const Api& a = api();
  check(a.hipInit(0), "hipInit");
  int n = 0;
  if (a.hipGetDeviceCount(&n) != 0 || n == 0)
    throw_error("hip: the ROCm runtime finds no GPU (check `rocminfo`, /dev/kfd permissions, HIP_VISIBLE_DEVICES)");
  return n;
}

class RuntimeDevice final : public Device {
 public:
  explicit RuntimeDevice(int index) : a_(api()) {
    const int n = device_count();
    if (index >= n) throw_error("hip: no device {} (the runtime lists {})", index, n);
    dev_ = index < 0 ? 0 : index;
    check(a_.hipSetDevice(dev_), "hipSetDevice");
    std::string tried;
    for (const CodeObject& co : code_objects()) {
      if (a_.hipModuleLoadData(&module_, co.data) == 0) {
        arch_ = co.arch;
        break;
      }
      tried += std::string(tried.empty() ? "" : ", ") + co.arch;
    }
    if (!module_)
      throw_error("hip: device {} accepts none of this build's code objects ({}); rebuild with -DTESSERA_HIP_ARCHS=<its gfx name>",
                  dev_, tried.empty() ? "none: built without the HIP device compiler" : tried);
  }
  void* alloc(size_t bytes) override {
    void* p = nullptr;
    check(a_.hipMalloc(&p, bytes == 0 ? 16 : bytes), "hipMalloc");
    check(a_.hipMemset(p, 0, bytes == 0 ? 16 : bytes), "hipMemset");
    return p;
  }
  void free(void* p) override { a_.hipFree(p); }
  void upload(void* dst, const void* src, size_t n) override { check(a_.hipMemcpy(dst, src, n, kH2D), "hipMemcpy (to device)"); }
  void download(void* dst, const void* src, size_t n) override { check(a_.hipMemcpy(dst, src, n, kD2H), "hipMemcpy (to host)"); }
  void copy(void* dst, const void* src, size_t n) override { check(a_.hipMemcpy(dst, src, n, kD2D), "hipMemcpy (device)"); }
  void launch(const Launch& l) override {
    hipFunction_t& f = functions_[l.kernel];
    if (!f) check(a_.hipModuleGetFunction(&f, module_, l.kernel), l.kernel);
    void* params[] = {const_cast<void*>(l.args)};
    check(a_.hipModuleLaunchKernel(f, l.grid[0], l.grid[1], l.grid[2], l.block[0], l.block[1], l.block[2], l.shared_bytes, nullptr,
                                   params, nullptr),
          l.kernel);
  }
  void sync() override { check(a_.hipDeviceSynchronize(), "hipDeviceSynchronize"); }
  bool has_wmma_gfx12() const override { return arch_ == "gfx1200" || arch_ == "gfx1201"; }

 private:
  const Api& a_;
  int dev_ = 0;
  hipModule_t module_ = nullptr;
  std::string arch_;
  std::map<std::string, hipFunction_t> functions_;
};

}  // namespace

std::shared_ptr<Device> open_runtime_device(int index) { return std::make_shared<RuntimeDevice>(index); }

std::string list_runtime_devices() {
  const int n = device_count();
  std::string s;
  for (int i = 0; i < n; ++i) {
    char name[256] = {};
    size_t mem = 0;
    api().hipDeviceGetName(name, sizeof name, i);
    api().hipDeviceTotalMem(&mem, i);
    s += fmt::format("hip {}: {} ({} MiB)\n", i, name, mem >> 20);
  }
  return s;
}

}  // namespace tessera::engine::hipdev
