// The code objects of kernels/hip/kernels.hip, one per GPU architecture, compiled by clang at build time
// (cmake/hip.cmake) and embedded in the binary; empty in a build without the HIP device compiler.
#pragma once
#include <cstddef>
#include <span>

namespace tessera::engine::hipdev {
struct CodeObject {
  const char* arch;  // "gfx1201"
  const unsigned char* data;
  size_t size;
  const char* resources;  // clang's -Rpass-analysis=kernel-resource-usage remarks, one per line
};
std::span<const CodeObject> code_objects();
}  // namespace tessera::engine::hipdev
