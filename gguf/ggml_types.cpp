// The traits table for every ggml type id.
#include "gguf/ggml_types.h"

#include <array>
#include <cctype>

#include "core/error.h"
#include "gguf/quant_blocks.h"

namespace tessera {
namespace {

using T = GgmlType;
constexpr std::array<TypeTraits, 32> kTraits = {{
    {T::F32, "f32", 1, 4, false},
    {T::F16, "f16", 1, 2, false},
    {T::Q4_0, "q4_0", QK4_0, sizeof(block_q4_0), true},
    {T::Q4_1, "q4_1", QK4_1, sizeof(block_q4_1), true},
    {T::Q5_0, "q5_0", QK5_0, sizeof(block_q5_0), true},
    {T::Q5_1, "q5_1", QK5_1, sizeof(block_q5_1), true},
    {T::Q8_0, "q8_0", QK8_0, sizeof(block_q8_0), true},
    {T::Q8_1, "q8_1", QK8_1, sizeof(block_q8_1), true},
    {T::Q2_K, "q2_K", QK_K, sizeof(block_q2_K), true},
    {T::Q3_K, "q3_K", QK_K, sizeof(block_q3_K), true},
    {T::Q4_K, "q4_K", QK_K, sizeof(block_q4_K), true},
    {T::Q5_K, "q5_K", QK_K, sizeof(block_q5_K), true},
    {T::Q6_K, "q6_K", QK_K, sizeof(block_q6_K), true},
    {T::Q8_K, "q8_K", QK_K, sizeof(block_q8_K), true},
    {T::IQ2_XXS, "iq2_xxs", QK_K, 66, true},
    {T::IQ2_XS, "iq2_xs", QK_K, 74, true},
    {T::IQ3_XXS, "iq3_xxs", QK_K, 98, true},
    {T::IQ1_S, "iq1_s", QK_K, 50, true},
    {T::IQ4_NL, "iq4_nl", QK4_NL, sizeof(block_iq4_nl), true},
    {T::IQ3_S, "iq3_s", QK_K, 110, true},
    {T::IQ2_S, "iq2_s", QK_K, 82, true},
    {T::IQ4_XS, "iq4_xs", QK_K, sizeof(block_iq4_xs), true},
    {T::I8, "i8", 1, 1, false},
    {T::I16, "i16", 1, 2, false},
    {T::I32, "i32", 1, 4, false},
    {T::I64, "i64", 1, 8, false},
    {T::F64, "f64", 1, 8, false},
    {T::IQ1_M, "iq1_m", QK_K, 56, true},
    {T::BF16, "bf16", 1, 2, false},
    {T::TQ1_0, "tq1_0", QK_K, 54, true},
    {T::TQ2_0, "tq2_0", QK_K, 66, true},
    {T::MXFP4, "mxfp4", QK_MXFP4, sizeof(block_mxfp4), true},
}};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

}  // namespace

const TypeTraits* find_type_traits(uint32_t id) {
  for (const TypeTraits& t : kTraits)
    if (static_cast<uint32_t>(t.type) == id) return &t;
  return nullptr;
}

const TypeTraits& type_traits(GgmlType t) {
  const TypeTraits* tr = find_type_traits(static_cast<uint32_t>(t));
  if (!tr) throw_error("unknown ggml type id {}", static_cast<uint32_t>(t));
  return *tr;
}

std::optional<GgmlType> type_from_name(std::string_view name) {
  for (const TypeTraits& t : kTraits)
    if (iequals(t.name, name)) return t.type;
  return std::nullopt;
}

}  // namespace tessera
