// Per-tensor type rules of a quantization scheme (Q4_K_M, IQ4_NL, ...), shared by `tessera mkmodel`
// and `tessera quantize`. Facts: shared reference "Which types a file holds" (llama.cpp's rules).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/ggml_types.h"

namespace tessera::cli {

// A file-level quantization scheme: its name, llama.cpp's general.file_type id, and the type most
// weight matrices get.
struct QuantScheme {
  std::string_view name;  // "Q4_K_M"
  uint32_t file_type;     // general.file_type (llama_ftype)
  GgmlType base;          // the type of "everything else"
};

// Known schemes: F32, F16, BF16, Q8_0, Q4_0, Q4_K_M, Q5_K_M, Q6_K, IQ4_NL, IQ4_XS, MXFP4.
// Lookup is case-insensitive; nullopt for an unknown name.
std::optional<QuantScheme> find_scheme(std::string_view name);
std::string scheme_names();  // "F32, F16, ..." for error messages

// What the rules need to know about the model as a whole.
struct ModelFacts {
  int64_t n_layer = 0;      // block_count
  int64_t n_head = 1;       // attention.head_count
  int64_t n_head_kv = 1;    // attention.head_count_kv
  bool has_output = true;   // false: output tied to token_embd, which then follows the output rule
};

// The layer index of "blk.N.<...>", or -1.
int64_t layer_of(std::string_view tensor_name);

// llama.cpp's "use more bits" layers: the first and last eighth, and every third one in between.
bool use_more_bits(int64_t layer, int64_t n_layer);

// The type the scheme gives a tensor before any row-length fallback (ne in ggml order).
GgmlType preferred_type(const QuantScheme& s, std::string_view name, const std::vector<int64_t>& ne,
                        const ModelFacts& facts);

// Applies the row-length fallbacks: a row (ne[0]) that is not a multiple of the type's block size
// moves Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, IQ4_XS / Q2_K / Q3_K -> IQ4_NL, then F16 if even
// the 32-block does not fit.
GgmlType fallback_type(GgmlType t, int64_t row_length);

// preferred_type followed by fallback_type.
GgmlType choose_type(const QuantScheme& s, std::string_view name, const std::vector<int64_t>& ne,
                     const ModelFacts& facts);

}  // namespace tessera::cli
