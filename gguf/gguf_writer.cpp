// GGUF writer (version 3): metadata in insertion order, tensor infos, then each tensor's data at an
// aligned offset with zero padding after it. Values are checked when they are set.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "gguf/gguf.h"

namespace tessera::gguf {
namespace {

constexpr uint32_t kMaxNameBytes = 63;

bool fits(ValueType t, int64_t v) {
  switch (t) {
    case ValueType::U8: return v >= 0 && v <= 0xff;
    case ValueType::I8: return v >= -128 && v <= 127;
    case ValueType::U16: return v >= 0 && v <= 0xffff;
    case ValueType::I16: return v >= -32768 && v <= 32767;
    case ValueType::U32: return v >= 0 && v <= 0xffffffffLL;
    case ValueType::I32: return v >= std::numeric_limits<int32_t>::min() && v <= std::numeric_limits<int32_t>::max();
    case ValueType::U64: case ValueType::I64: return true;  // u64 is held as its bit pattern
    case ValueType::BOOL: return v == 0 || v == 1;
    default: return false;
  }
}

// Checks that `v` holds the alternative its type says, with values in range.
void check_value(std::string_view key, const MetaValue& v) {
  auto bad = [&](std::string_view why) { throw_error("gguf writer: key '{}' ({}): {}", key, value_type_name(v.type), why); };
  switch (v.type) {
    case ValueType::F32: case ValueType::F64:
      if (!std::holds_alternative<double>(v.value)) bad("value must be held as double");
      return;
    case ValueType::BOOL:
      if (!std::holds_alternative<bool>(v.value)) bad("value must be held as bool");
      return;
    case ValueType::STRING:
      if (!std::holds_alternative<std::string>(v.value)) bad("value must be held as std::string");
      return;
    case ValueType::ARRAY: {
      const auto* a = std::get_if<MetaArray>(&v.value);
      if (!a) bad("value must be held as MetaArray");
      if (a->elem_type == ValueType::ARRAY) bad("nested arrays are not supported");
      if (static_cast<uint32_t>(a->elem_type) > static_cast<uint32_t>(ValueType::F64)) bad("unknown element type");
      const bool str = a->elem_type == ValueType::STRING;
      const bool flt = a->elem_type == ValueType::F32 || a->elem_type == ValueType::F64;
      if ((!str && !a->strings.empty()) || (!flt && !a->floats.empty()) || ((str || flt) && !a->ints.empty()))
        bad(fmt::format("array[{}] elements are in the wrong vector", value_type_name(a->elem_type)));
      if (!str && !flt)
        for (int64_t x : a->ints)
          if (!fits(a->elem_type, x)) bad(fmt::format("array element {} does not fit", x));
      return;
    }
    default:
      if (static_cast<uint32_t>(v.type) > static_cast<uint32_t>(ValueType::F64)) bad("unknown value type");
      if (!std::holds_alternative<int64_t>(v.value)) bad("value must be held as int64_t");
      if (!fits(v.type, std::get<int64_t>(v.value))) bad(fmt::format("{} does not fit", std::get<int64_t>(v.value)));
      return;
  }
}

// A power of two no larger than kMaxAlignment.
bool valid_alignment(uint64_t a) { return a != 0 && (a & (a - 1)) == 0 && a <= kMaxAlignment; }

// Little-endian byte sink.
struct Bytes {
  std::vector<uint8_t> b;
  template <typename T>
  void put(T v) {
    uint8_t tmp[sizeof(T)];
    std::memcpy(tmp, &v, sizeof(T));
    b.insert(b.end(), tmp, tmp + sizeof(T));
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
  }
  void pad_to(uint64_t align) { b.resize((b.size() + align - 1) / align * align, 0); }
};

void put_int(Bytes& out, ValueType t, int64_t v) {
  switch (t) {
    case ValueType::U8: out.put<uint8_t>(static_cast<uint8_t>(v)); break;
    case ValueType::I8: out.put<int8_t>(static_cast<int8_t>(v)); break;
    case ValueType::U16: out.put<uint16_t>(static_cast<uint16_t>(v)); break;
    case ValueType::I16: out.put<int16_t>(static_cast<int16_t>(v)); break;
    case ValueType::U32: out.put<uint32_t>(static_cast<uint32_t>(v)); break;
    case ValueType::I32: out.put<int32_t>(static_cast<int32_t>(v)); break;
    case ValueType::U64: out.put<uint64_t>(static_cast<uint64_t>(v)); break;
    case ValueType::I64: out.put<int64_t>(v); break;
    case ValueType::BOOL: out.put<uint8_t>(v ? 1 : 0); break;
    default: break;
  }
}

void put_float(Bytes& out, ValueType t, double v) {
  if (t == ValueType::F32) out.put<float>(static_cast<float>(v));
  else out.put<double>(v);
}

void put_value(Bytes& out, const MetaValue& v) {
  out.put<uint32_t>(static_cast<uint32_t>(v.type));
  switch (v.type) {
    case ValueType::F32: case ValueType::F64: put_float(out, v.type, std::get<double>(v.value)); break;
    case ValueType::BOOL: out.put<uint8_t>(std::get<bool>(v.value) ? 1 : 0); break;
    case ValueType::STRING: out.put_string(std::get<std::string>(v.value)); break;
    case ValueType::ARRAY: {
      const MetaArray& a = std::get<MetaArray>(v.value);
      out.put<uint32_t>(static_cast<uint32_t>(a.elem_type));
      out.put<uint64_t>(a.size());
      if (a.elem_type == ValueType::STRING) for (const std::string& s : a.strings) out.put_string(s);
      else if (a.elem_type == ValueType::F32 || a.elem_type == ValueType::F64) for (double x : a.floats) put_float(out, a.elem_type, x);
      else for (int64_t x : a.ints) put_int(out, a.elem_type, x);
      break;
    }
    default: put_int(out, v.type, std::get<int64_t>(v.value)); break;
  }
}

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

}  // namespace

void Writer::set(std::string key, MetaValue value) {
  check_value(key, value);
  if (key == "general.alignment") {
    if (value.type != ValueType::U32) throw_error("gguf writer: general.alignment must be u32, got {}", type_string(value));
    uint64_t a = static_cast<uint64_t>(std::get<int64_t>(value.value));
    if (!valid_alignment(a)) throw_error("gguf writer: general.alignment {} is not a power of two <= {}", a, kMaxAlignment);
    alignment_ = static_cast<uint32_t>(a);
  }
  for (auto& [k, v] : kv_)
    if (k == key) {
      v = std::move(value);
      return;
    }
  kv_.emplace_back(std::move(key), std::move(value));
}

void Writer::set_string(std::string key, std::string v) { set(std::move(key), MetaValue{ValueType::STRING, std::move(v)}); }
void Writer::set_u32(std::string key, uint32_t v) { set(std::move(key), MetaValue{ValueType::U32, int64_t{v}}); }
void Writer::set_i32(std::string key, int32_t v) { set(std::move(key), MetaValue{ValueType::I32, int64_t{v}}); }
void Writer::set_u64(std::string key, uint64_t v) { set(std::move(key), MetaValue{ValueType::U64, static_cast<int64_t>(v)}); }
void Writer::set_f32(std::string key, float v) { set(std::move(key), MetaValue{ValueType::F32, double{v}}); }
void Writer::set_bool(std::string key, bool v) { set(std::move(key), MetaValue{ValueType::BOOL, v}); }

void Writer::set_alignment(uint32_t a) {
  if (!valid_alignment(a)) throw_error("gguf writer: alignment {} is not a power of two <= {}", a, kMaxAlignment);
  bool present = false;
  for (const auto& kv : kv_) present |= kv.first == "general.alignment";
  if (a != 32 || present) set_u32("general.alignment", a);
  alignment_ = a;
}

void Writer::copy_metadata(const File& src, std::string_view prefix) {
  for (const auto& [k, v] : src.metadata())
    if (k.compare(0, prefix.size(), prefix) == 0) set(k, v);
}

void Writer::add_tensor(std::string name, GgmlType type, std::vector<int64_t> ne, std::vector<uint8_t> data) {
  if (name.size() > kMaxNameBytes)
    throw_error("gguf writer: tensor name '{}' has {} bytes (at most {})", name, name.size(), kMaxNameBytes);
  for (const Tensor& t : tensors_)
    if (t.name == name) throw_error("gguf writer: duplicate tensor '{}'", name);
  if (ne.empty() || ne.size() > 4) throw_error("gguf writer: tensor '{}': {} dims (1..4 allowed)", name, ne.size());
  const TypeTraits* tr = find_type_traits(static_cast<uint32_t>(type));
  if (!tr) throw_error("gguf writer: tensor '{}': unknown type id {}", name, static_cast<uint32_t>(type));
  for (int64_t n : ne)
    if (n < 0) throw_error("gguf writer: tensor '{}': negative dimension {}", name, n);
  if (ne[0] % tr->block_size != 0)
    throw_error("gguf writer: tensor '{}': ne[0] = {} is not a multiple of the {} block size {}", name, ne[0], tr->name,
                tr->block_size);
  uint64_t nbytes = static_cast<uint64_t>(ne[0] / tr->block_size);
  bool overflow = __builtin_mul_overflow(nbytes, uint64_t{tr->type_size}, &nbytes);
  for (size_t d = 1; d < ne.size(); ++d) overflow |= __builtin_mul_overflow(nbytes, static_cast<uint64_t>(ne[d]), &nbytes);
  if (overflow) throw_error("gguf writer: tensor '{}': size overflows", name);
  if (data.size() != nbytes)
    throw_error("gguf writer: tensor '{}' ({}): {} data bytes given, its shape needs {}", name, tr->name, data.size(), nbytes);
  tensors_.push_back(Tensor{std::move(name), type, std::move(ne), std::move(data)});
}

// Header, metadata and tensor infos, padded to the alignment (the data section follows).
static std::vector<uint8_t> header_bytes(uint32_t alignment, const std::vector<std::pair<std::string, MetaValue>>& kv,
                                         size_t n_tensors, const auto& tensors) {
  Bytes out;
  out.b = {'G', 'G', 'U', 'F'};
  out.put<uint32_t>(3);
  out.put<uint64_t>(n_tensors);
  out.put<uint64_t>(kv.size());
  for (const auto& [k, v] : kv) {
    out.put_string(k);
    put_value(out, v);
  }
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    out.put_string(t.name);
    out.put<uint32_t>(static_cast<uint32_t>(t.ne.size()));
    for (int64_t n : t.ne) out.put<int64_t>(n);
    out.put<uint32_t>(static_cast<uint32_t>(t.type));
    out.put<uint64_t>(offset);
    offset = align_up(offset + t.data.size(), alignment);
  }
  out.pad_to(alignment);
  return std::move(out.b);
}

std::vector<uint8_t> Writer::to_bytes() const {
  std::vector<uint8_t> out = header_bytes(alignment_, kv_, tensors_.size(), tensors_);
  const uint64_t data_start = out.size();
  for (const Tensor& t : tensors_) {
    out.insert(out.end(), t.data.begin(), t.data.end());
    out.resize(data_start + align_up(out.size() - data_start, alignment_), 0);
  }
  return out;
}

void Writer::write(const std::string& path) const {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw_error("{}: cannot create: {}", path, std::strerror(errno));
  auto put = [&](const void* p, size_t n) {
    if (n && std::fwrite(p, 1, n, f) != n) {
      int e = errno;
      std::fclose(f);
      throw_error("{}: write failed: {}", path, std::strerror(e));
    }
  };
  std::vector<uint8_t> head = header_bytes(alignment_, kv_, tensors_.size(), tensors_);
  put(head.data(), head.size());
  static const uint8_t zeros[256] = {};
  for (const Tensor& t : tensors_) {
    put(t.data.data(), t.data.size());
    for (uint64_t pad = align_up(t.data.size(), alignment_) - t.data.size(); pad > 0;) {
      size_t n = pad < sizeof(zeros) ? static_cast<size_t>(pad) : sizeof(zeros);
      put(zeros, n);
      pad -= n;
    }
  }
  if (std::fclose(f) != 0) throw_error("{}: write failed: {}", path, std::strerror(errno));
}

}  // namespace tessera::gguf
