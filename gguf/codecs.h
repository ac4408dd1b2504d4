// Reference quant codecs: scalar, obviously correct, the truth every kernel is compared against.
#pragma once
#include <cstddef>
#include <cstdint>

#include "gguf/ggml_types.h"

namespace tessera {

// Decodes n values (a multiple of the type's block size) of type t. Bit-exact with ggml (same float
// operations in the same order, no FMA contraction). Types: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1,
// Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, IQ4_NL, IQ4_XS, MXFP4.
// Throws tessera::Error for a type without a decoder or a bad n.
void dequantize_row(GgmlType t, const void* src, float* dst, int64_t n);
bool has_decoder(GgmlType t);

// Encodes n values (a multiple of the block size) into row_bytes(t, n) bytes; returns bytes written.
// Same types as the decoder. F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and MXFP4 reproduce ggml's
// reference quantizers byte for byte; the K-quants and IQ4_NL / IQ4_XS search their scales (least
// squares, no importance matrix) and reach a lower NMSE than ggml's. Deterministic, allocation-free,
// thread-safe (callers parallelize over rows). Finite input never decodes to inf/NaN for the K-quant
// and IQ4 types (their fp16 scales saturate); the byte-identical types overflow like ggml beyond fp16.
// Throws tessera::Error for a type without an encoder or a bad n.
size_t quantize_row(GgmlType t, const float* src, void* dst, int64_t n);
bool has_encoder(GgmlType t);

}  // namespace tessera
