// The SPIR-V of shaders/*.comp, compiled and validated at build time (cmake/vulkan.cmake), by variant name.
#pragma once
#include <cstdint>
#include <span>
#include <string_view>

namespace tessera::vk {
// Empty when no shader has this name.
std::span<const uint32_t> find_shader(std::string_view name);
}  // namespace tessera::vk
