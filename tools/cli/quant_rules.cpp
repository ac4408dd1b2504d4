// Per-tensor type rules of the quantization schemes (llama.cpp's, as the shared reference states them).
#include "tools/cli/quant_rules.h"

#include <array>
#include <cctype>
#include <charconv>

namespace tessera::cli {

namespace {

// general.file_type ids are llama.cpp's llama_ftype values.
constexpr std::array<QuantScheme, 11> kSchemes = {{
    {"F32", 0, GgmlType::F32},
    {"F16", 1, GgmlType::F16},
    {"Q4_0", 2, GgmlType::Q4_0},
    {"Q8_0", 7, GgmlType::Q8_0},
    {"Q4_K_M", 15, GgmlType::Q4_K},
    {"Q5_K_M", 17, GgmlType::Q5_K},
    {"Q6_K", 18, GgmlType::Q6_K},
    {"IQ4_NL", 25, GgmlType::IQ4_NL},
    {"IQ4_XS", 30, GgmlType::IQ4_XS},
    {"BF16", 32, GgmlType::BF16},
    {"MXFP4", 38, GgmlType::MXFP4},  // llama.cpp's MXFP4_MOE: experts MXFP4, the rest Q8_0
}};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower((unsigned char)a[i]) != std::tolower((unsigned char)b[i])) return false;
  return true;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

bool is_output(std::string_view name, const ModelFacts& f) {
  return name == "output.weight" || (!f.has_output && name == "token_embd.weight");
}

}  // namespace

std::optional<QuantScheme> find_scheme(std::string_view name) {
  for (const QuantScheme& s : kSchemes)
    if (iequals(s.name, name)) return s;
  if (iequals(name, "MXFP4_MOE")) return kSchemes.back();
  return std::nullopt;
}

std::string scheme_names() {
  std::string out;
  for (const QuantScheme& s : kSchemes) {
    if (!out.empty()) out += ", ";
    out += s.name;
  }
  return out;
}

int64_t layer_of(std::string_view name) {
  if (name.substr(0, 4) != "blk.") return -1;
  int64_t layer = -1;
  auto [p, ec] = std::from_chars(name.data() + 4, name.data() + name.size(), layer);
  if (ec != std::errc() || p == name.data() + name.size() || *p != '.') return -1;
  return layer;
}

bool use_more_bits(int64_t i, int64_t n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

GgmlType preferred_type(const QuantScheme& s, std::string_view name, const std::vector<int64_t>& ne,
                        const ModelFacts& facts) {
  // Vectors (norms, biases) and the MoE router stay F32 in every scheme: they are tiny and the
  // router's logits decide which experts run.
  bool is_vector = ne.size() <= 1;
  for (size_t d = 1; d < ne.size(); ++d) is_vector = is_vector && ne[d] == 1;
  if (is_vector || contains(name, "ffn_gate_inp") || ends_with(name, "_norm.weight")) return GgmlType::F32;
  if (!type_traits(s.base).quantized) return s.base;  // F32, F16, BF16: all matrices

  const int64_t layer = layer_of(name);
  const bool down = contains(name, "ffn_down");
  const bool attn_v = contains(name, "attn_v.weight");
  switch (s.file_type) {
    case 7:   // Q8_0: everything, output included
      return GgmlType::Q8_0;
    case 38:  // MXFP4_MOE: the 3-D expert tensors MXFP4, all other matrices Q8_0
      return ne.size() >= 3 && ne[2] > 1 ? GgmlType::MXFP4 : GgmlType::Q8_0;
    default:
      break;
  }
  if (is_output(name, facts)) return GgmlType::Q6_K;
  switch (s.file_type) {
    case 15:  // Q4_K_M
    case 17:  // Q5_K_M
      if ((attn_v || down) && layer >= 0 && use_more_bits(layer, facts.n_layer)) return GgmlType::Q6_K;
      return s.base;
    case 25:  // IQ4_NL
    case 30:  // IQ4_XS
      if (attn_v && facts.n_head_kv > 0 && facts.n_head / facts.n_head_kv >= 4) return GgmlType::Q5_K;
      if (down && layer >= 0 && layer < facts.n_layer / 8) return GgmlType::Q5_K;
      return s.base;
    default:  // Q4_0, Q6_K: one type for all matrices but the output
      return s.base;
  }
}

GgmlType fallback_type(GgmlType t, int64_t row_length) {
  auto fits = [&](GgmlType x) { return row_length % type_traits(x).block_size == 0; };
  if (fits(t)) return t;
  switch (t) {
    case GgmlType::Q4_K: t = GgmlType::Q5_0; break;
    case GgmlType::Q5_K: t = GgmlType::Q5_1; break;
    case GgmlType::Q6_K: t = GgmlType::Q8_0; break;
    case GgmlType::Q2_K:
    case GgmlType::Q3_K:
    case GgmlType::IQ4_XS: t = GgmlType::IQ4_NL; break;
    default: break;
  }
  return fits(t) ? t : GgmlType::F16;
}

GgmlType choose_type(const QuantScheme& s, std::string_view name, const std::vector<int64_t>& ne,
                     const ModelFacts& facts) {
  GgmlType t = preferred_type(s, name, ne, facts);
  return ne.empty() ? t : fallback_type(t, ne[0]);
}

}  // namespace tessera::cli
