// GGUF metadata helpers: value type names, equality, and File's typed accessors.
#include <cstring>

#include "core/error.h"
#include "gguf/gguf.h"

namespace tessera::gguf {

std::string_view value_type_name(ValueType t) {
  switch (t) {
    case ValueType::U8: return "u8";
    case ValueType::I8: return "i8";
    case ValueType::U16: return "u16";
    case ValueType::I16: return "i16";
    case ValueType::U32: return "u32";
    case ValueType::I32: return "i32";
    case ValueType::F32: return "f32";
    case ValueType::BOOL: return "bool";
    case ValueType::STRING: return "string";
    case ValueType::ARRAY: return "array";
    case ValueType::U64: return "u64";
    case ValueType::I64: return "i64";
    case ValueType::F64: return "f64";
  }
  return "unknown";
}

uint64_t value_type_min_size(ValueType t) {
  switch (t) {
    case ValueType::U8: case ValueType::I8: case ValueType::BOOL: return 1;
    case ValueType::U16: case ValueType::I16: return 2;
    case ValueType::U32: case ValueType::I32: case ValueType::F32: return 4;
    case ValueType::U64: case ValueType::I64: case ValueType::F64: return 8;
    case ValueType::STRING: return 8;       // u64 length
    case ValueType::ARRAY: return 4 + 8;    // element type + count
  }
  return 1;
}

std::string type_string(const MetaValue& v) {
  if (v.type == ValueType::ARRAY) {
    if (const auto* a = std::get_if<MetaArray>(&v.value))
      return fmt::format("array[{}]", value_type_name(a->elem_type));
  }
  return std::string(value_type_name(v.type));
}

size_t MetaArray::size() const {
  switch (elem_type) {
    case ValueType::STRING: return strings.size();
    case ValueType::F32: case ValueType::F64: return floats.size();
    default: return ints.size();
  }
}

static bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof(double)) == 0; }

bool operator==(const MetaArray& a, const MetaArray& b) {
  if (a.elem_type != b.elem_type || a.strings != b.strings || a.ints != b.ints) return false;
  if (a.floats.size() != b.floats.size()) return false;
  for (size_t i = 0; i < a.floats.size(); ++i)
    if (!same_bits(a.floats[i], b.floats[i])) return false;
  return true;
}

bool operator==(const MetaValue& a, const MetaValue& b) {
  if (a.type != b.type || a.value.index() != b.value.index()) return false;
  if (const auto* x = std::get_if<double>(&a.value)) return same_bits(*x, std::get<double>(b.value));
  return a.value == b.value;
}

// ---- File accessors -------------------------------------------------------------------------

const MetaValue* File::find(std::string_view key) const {
  for (const auto& [k, v] : kv_)
    if (k == key) return &v;
  return nullptr;
}

namespace {

bool is_integer(ValueType t) {
  switch (t) {
    case ValueType::U8: case ValueType::I8: case ValueType::U16: case ValueType::I16:
    case ValueType::U32: case ValueType::I32: case ValueType::U64: case ValueType::I64:
      return true;
    default:
      return false;
  }
}

[[noreturn]] void wrong_type(const std::string& path, std::string_view key, const MetaValue& v,
                             std::string_view expected) {
  throw_error("{}: metadata key '{}' is {}, expected {}", path, key, type_string(v), expected);
}

}  // namespace

static const MetaValue& require(const File& f, std::string_view key) {
  const MetaValue* v = f.find(key);
  if (!v) throw_error("{}: metadata key '{}' is missing", f.path(), key);
  return *v;
}

std::string File::get_string(std::string_view key) const {
  const MetaValue& v = require(*this, key);
  if (v.type != ValueType::STRING) wrong_type(path_, key, v, "string");
  return std::get<std::string>(v.value);
}

int64_t File::get_int(std::string_view key) const {
  const MetaValue& v = require(*this, key);
  if (!is_integer(v.type)) wrong_type(path_, key, v, "an integer");
  int64_t x = std::get<int64_t>(v.value);
  if (v.type == ValueType::U64 && x < 0)
    throw_error("{}: metadata key '{}' = {} does not fit in int64", path_, key, static_cast<uint64_t>(x));
  return x;
}

double File::get_float(std::string_view key) const {
  const MetaValue& v = require(*this, key);
  if (v.type == ValueType::F32 || v.type == ValueType::F64) return std::get<double>(v.value);
  if (is_integer(v.type)) {
    int64_t x = std::get<int64_t>(v.value);
    return v.type == ValueType::U64 ? static_cast<double>(static_cast<uint64_t>(x)) : static_cast<double>(x);
  }
  wrong_type(path_, key, v, "a number (f32 or f64)");
}

bool File::get_bool(std::string_view key) const {
  const MetaValue& v = require(*this, key);
  if (v.type != ValueType::BOOL) wrong_type(path_, key, v, "bool");
  return std::get<bool>(v.value);
}

const MetaArray& File::get_array(std::string_view key) const {
  const MetaValue& v = require(*this, key);
  if (v.type != ValueType::ARRAY) wrong_type(path_, key, v, "array");
  return std::get<MetaArray>(v.value);
}

std::string File::get_string_or(std::string_view key, std::string fallback) const {
  return has(key) ? get_string(key) : fallback;
}
int64_t File::get_int_or(std::string_view key, int64_t fallback) const {
  return has(key) ? get_int(key) : fallback;
}
double File::get_float_or(std::string_view key, double fallback) const {
  return has(key) ? get_float(key) : fallback;
}
bool File::get_bool_or(std::string_view key, bool fallback) const {
  return has(key) ? get_bool(key) : fallback;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  for (const TensorInfo& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

const TensorInfo& File::tensor(std::string_view name) const {
  const TensorInfo* t = find_tensor(name);
  if (!t) throw_error("{}: tensor '{}' is missing", path_, name);
  return *t;
}

}  // namespace tessera::gguf
