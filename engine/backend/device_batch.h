// What the GPU backends (Vulkan, HIP) upload per step and per weight, built once here for both.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/backend/backend.h"

namespace tessera::engine {

// The batch as device kernels read it, in 32-bit words: tokens [n], positions [n], each token's
// offset of its block table [n], output rows [n_out], then the block tables (the blocks holding
// keys 0..pos of each token).
std::vector<uint32_t> device_batch_words(const Batch& b);

// cos / sin of every token's RoPE angles, [n][head_dim / 2][2]: computed in double (f32 angles at large
// positions are off by ~1e-2), with the config's linear scaling and frequency factors (as RefStream::rope).
std::vector<float> rope_cos_sin(const ModelConfig& c, const Batch& b);

// A weight matrix whose bytes a backend has uploaded (`device`); the host view stays for shapes.
Matrix device_matrix(const gguf::TensorInfo& t, std::shared_ptr<void> device);

}  // namespace tessera::engine
