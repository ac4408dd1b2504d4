// Reference quant codecs: scalar, obviously correct, the truth every kernel is compared against.
#pragma once
#include <cstddef>
#include <cstdint>

#include "gguf/ggml_types.h"

namespace tessera {

// Decodes n values (a multiple of the type's block size) of type t. Bit-exact with ggml.
// Throws tessera::Error for a type without a decoder.
void dequantize_row(GgmlType t, const void* src, float* dst, int64_t n);
bool has_decoder(GgmlType t);

// Encodes n values (a multiple of the block size) into row_bytes(t, n) bytes; returns bytes written.
// Throws tessera::Error for a type without an encoder.
size_t quantize_row(GgmlType t, const float* src, void* dst, int64_t n);
bool has_encoder(GgmlType t);

}  // namespace tessera
