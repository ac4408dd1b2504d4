// tessera gguf inspect FILE [--json] [--full]: prints a GGUF file's metadata and tensor table.
#include <cstdio>
#include <map>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "gguf/gguf.h"
#include "tools/cli/args.h"
#include "tools/cli/commands.h"

namespace tessera::cli {
namespace {

using gguf::MetaArray;
using gguf::MetaValue;
using gguf::ValueType;
using json = nlohmann::ordered_json;  // keeps file order

constexpr size_t kArrayFullMax = 64;  // longer arrays are summarised unless --full
constexpr size_t kArrayHead = 8;      // items shown in a summary
constexpr size_t kTextStringMax = 100;

constexpr const char* kUsage =
    "usage: tessera gguf inspect FILE [--json] [--full]\n"
    "\n"
    "Prints the metadata and the tensor table (name, type, shape, bytes, offset) of a GGUF file,\n"
    "with totals by tensor type. Offsets are relative to the start of the data section.\n"
    "\n"
    "  --json   print {\"metadata\": {key: value}, \"tensors\": [{\"name\", \"type\", \"shape\",\n"
    "           \"offset\", \"bytes\"}]}; types are ggml names (q4_K, iq4_nl, f32), shape in ggml\n"
    "           order (ne[0] first). An array longer than 64 items is summarised as\n"
    "           {\"array\": \"<element type>\", \"count\": N, \"head\": [first 8 items]}.\n"
    "  --full   print every array item and whole strings (text and JSON).\n";

bool is_unsigned64(ValueType t) { return t == ValueType::U64; }

json scalar_json(ValueType t, int64_t v) {
  if (is_unsigned64(t)) return json(static_cast<uint64_t>(v));
  if (t == ValueType::BOOL) return json(v != 0);
  return json(v);
}

json array_items_json(const MetaArray& a, size_t n) {
  json out = json::array();
  for (size_t i = 0; i < n; ++i) {
    if (a.elem_type == ValueType::STRING) out.push_back(a.strings[i]);
    else if (a.elem_type == ValueType::F32 || a.elem_type == ValueType::F64) out.push_back(a.floats[i]);
    else out.push_back(scalar_json(a.elem_type, a.ints[i]));
  }
  return out;
}

json value_json(const MetaValue& v, bool full) {
  switch (v.type) {
    case ValueType::F32: case ValueType::F64: return json(std::get<double>(v.value));
    case ValueType::BOOL: return json(std::get<bool>(v.value));
    case ValueType::STRING: return json(std::get<std::string>(v.value));
    case ValueType::ARRAY: {
      const MetaArray& a = std::get<MetaArray>(v.value);
      if (full || a.size() <= kArrayFullMax) return array_items_json(a, a.size());
      return json{{"array", gguf::value_type_name(a.elem_type)}, {"count", a.size()}, {"head", array_items_json(a, kArrayHead)}};
    }
    default: return scalar_json(v.type, std::get<int64_t>(v.value));
  }
}

json shape_json(const gguf::TensorInfo& t) {
  json s = json::array();
  for (uint32_t d = 0; d < t.n_dims; ++d) s.push_back(t.ne[d]);
  return s;
}

// One line of text for a string: escaped, cut to kTextStringMax bytes unless full.
std::string quoted(const std::string& s, bool full) {
  std::string out = "\"";
  size_t n = full ? s.size() : std::min(s.size(), kTextStringMax);
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '"' || c == '\\') out += fmt::format("\\{}", static_cast<char>(c));
    else if (c < 0x20 || c == 0x7f) out += fmt::format("\\x{:02x}", c);
    else out += static_cast<char>(c);
  }
  out += "\"";
  if (n < s.size()) out += fmt::format("... ({} bytes)", s.size());
  return out;
}

std::string scalar_text(ValueType t, int64_t v) {
  if (is_unsigned64(t)) return fmt::format("{}", static_cast<uint64_t>(v));
  if (t == ValueType::BOOL) return v ? "true" : "false";
  return fmt::format("{}", v);
}

std::string value_text(const MetaValue& v, bool full) {
  switch (v.type) {
    case ValueType::F32: case ValueType::F64: return fmt::format("{}", std::get<double>(v.value));
    case ValueType::BOOL: return std::get<bool>(v.value) ? "true" : "false";
    case ValueType::STRING: return quoted(std::get<std::string>(v.value), full);
    case ValueType::ARRAY: {
      const MetaArray& a = std::get<MetaArray>(v.value);
      size_t n = full ? a.size() : std::min(a.size(), kArrayHead);
      std::string out = "[";
      for (size_t i = 0; i < n; ++i) {
        if (i) out += ", ";
        if (a.elem_type == ValueType::STRING) out += quoted(a.strings[i], full);
        else if (a.elem_type == ValueType::F32 || a.elem_type == ValueType::F64) out += fmt::format("{}", a.floats[i]);
        else out += scalar_text(a.elem_type, a.ints[i]);
      }
      if (n < a.size()) out += fmt::format(", ... ({} items)", a.size());
      return out + "]";
    }
    default: return scalar_text(v.type, std::get<int64_t>(v.value));
  }
}

std::string shape_text(const gguf::TensorInfo& t) {
  std::string s = "[";
  for (uint32_t d = 0; d < t.n_dims; ++d) s += fmt::format("{}{}", d ? ", " : "", t.ne[d]);
  return s + "]";
}

void print_json(const gguf::File& f, bool full) {
  json meta = json::object();
  for (const auto& [k, v] : f.metadata()) meta[k] = value_json(v, full);
  json tensors = json::array();
  for (const gguf::TensorInfo& t : f.tensors())
    tensors.push_back(json{{"name", t.name}, {"type", type_name(t.type)}, {"shape", shape_json(t)},
                           {"offset", t.offset}, {"bytes", t.nbytes}});
  json out = json::object();
  out["metadata"] = std::move(meta);
  out["tensors"] = std::move(tensors);
  // Invalid UTF-8 in a string becomes U+FFFD so the output is always valid JSON.
  std::string s = out.dump(1, ' ', false, json::error_handler_t::replace);
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fputc('\n', stdout);
}

void print_text(const gguf::File& f, bool full) {
  fmt::print("file: {}\n", f.path());
  fmt::print("GGUF version {}, alignment {}, data offset {}, file size {} bytes\n", f.version(), f.alignment(),
             f.data_offset(), f.file_size());
  fmt::print("\nmetadata ({} keys):\n", f.metadata().size());
  size_t key_w = 0;
  for (const auto& kv : f.metadata()) key_w = std::max(key_w, kv.first.size());
  for (const auto& [k, v] : f.metadata())
    fmt::print("  {:<{}}  {:<13}  {}\n", k, key_w, gguf::type_string(v), value_text(v, full));

  fmt::print("\ntensors ({}):\n", f.tensors().size());
  size_t name_w = 4;
  for (const auto& t : f.tensors()) name_w = std::max(name_w, t.name.size());
  fmt::print("  {:>4}  {:<{}}  {:<7}  {:<24}  {:>12}  {:>12}\n", "#", "name", name_w, "type", "shape", "bytes", "offset");
  struct Total { size_t count = 0; int64_t elements = 0; uint64_t bytes = 0; };
  std::map<uint32_t, Total> totals;  // by type id
  Total all;
  for (size_t i = 0; i < f.tensors().size(); ++i) {
    const gguf::TensorInfo& t = f.tensors()[i];
    fmt::print("  {:>4}  {:<{}}  {:<7}  {:<24}  {:>12}  {:>12}\n", i, t.name, name_w, type_name(t.type), shape_text(t),
               t.nbytes, t.offset);
    for (Total* tot : {&totals[static_cast<uint32_t>(t.type)], &all}) {
      tot->count += 1;
      tot->elements += t.n_elements();
      tot->bytes += t.nbytes;
    }
  }
  fmt::print("\ntotals by type:\n");
  fmt::print("  {:<7}  {:>8}  {:>14}  {:>14}  {:>12}\n", "type", "tensors", "elements", "bytes", "bits/weight");
  auto row = [](std::string_view name, const Total& t) {
    double bpw = t.elements ? 8.0 * static_cast<double>(t.bytes) / static_cast<double>(t.elements) : 0.0;
    fmt::print("  {:<7}  {:>8}  {:>14}  {:>14}  {:>12.3f}\n", name, t.count, t.elements, t.bytes, bpw);
  };
  for (const auto& [id, t] : totals) row(type_name(static_cast<GgmlType>(id)), t);
  row("all", all);
}

}  // namespace

int cmd_gguf(int argc, char** argv) {
  Args args(argc, argv);
  if (args.flag({"-h", "--help"})) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  bool as_json = args.flag({"--json"});
  bool full = args.flag({"--full"});
  std::vector<std::string> pos = args.positionals();
  args.finish();
  if (pos.empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  if (pos[0] != "inspect") throw_error("unknown gguf subcommand '{}' (expected 'inspect')", pos[0]);
  if (pos.size() != 2) throw_error("'gguf inspect' takes exactly one FILE (got {})", pos.size() - 1);
  gguf::File f = gguf::File::open(pos[1]);
  if (as_json) print_json(f, full);
  else print_text(f, full);
  return 0;
}

}  // namespace tessera::cli
