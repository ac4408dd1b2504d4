// Test helpers shared by the GGUF tests, the mutation test and the fuzz seed maker: small valid
// GGUF images built from the golden models, a file exercising every metadata type, and a raw
// little-endian byte builder for hand-made (often broken) files.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "gguf/gguf.h"

namespace tessera::gguf::testing {

// The golden model files, sorted by name.
inline std::vector<std::string> golden_models(const std::string& golden_dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(golden_dir + "/models"))
    if (e.path().extension() == ".gguf") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Deterministic filler bytes for tensor data.
inline std::vector<uint8_t> pattern_bytes(size_t n, uint32_t seed) {
  std::vector<uint8_t> b(n);
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    b[i] = static_cast<uint8_t>(x >> 24);
  }
  return b;
}

// A small valid file with the metadata of `src` (arrays cut to `max_array` items, strings to 256
// bytes) and, for the first `max_tensors` tensors plus one of every other type present, a tensor of
// the same name, type and rank with ne = [block size, up to 2, ...].
inline Writer mini_writer(const File& src, size_t max_array = 16, size_t max_tensors = 6) {
  Writer w;
  for (const auto& [k, v0] : src.metadata()) {
    MetaValue v = v0;
    if (auto* a = std::get_if<MetaArray>(&v.value)) {
      if (a->strings.size() > max_array) a->strings.resize(max_array);
      if (a->ints.size() > max_array) a->ints.resize(max_array);
      if (a->floats.size() > max_array) a->floats.resize(max_array);
    } else if (auto* s = std::get_if<std::string>(&v.value)) {
      if (s->size() > 256) s->resize(256);
    }
    w.set(k, std::move(v));
  }
  std::set<GgmlType> seen;
  size_t taken = 0;
  for (const TensorInfo& t : src.tensors()) {
    if (taken >= max_tensors && seen.count(t.type)) continue;
    seen.insert(t.type);
    std::vector<int64_t> ne;
    for (uint32_t d = 0; d < t.n_dims; ++d) ne.push_back(d == 0 ? type_traits(t.type).block_size : std::min<int64_t>(t.ne[d], 2));
    uint64_t nbytes = row_bytes(t.type, ne[0]);
    for (size_t d = 1; d < ne.size(); ++d) nbytes *= static_cast<uint64_t>(ne[d]);
    w.add_tensor(t.name, t.type, ne, pattern_bytes(nbytes, static_cast<uint32_t>(taken)));
    ++taken;
  }
  return w;
}

inline MetaValue int_value(ValueType t, int64_t v) { return MetaValue{t, v}; }
inline MetaValue array_of_ints(ValueType t, std::vector<int64_t> xs) {
  MetaArray a;
  a.elem_type = t;
  a.ints = std::move(xs);
  return MetaValue{ValueType::ARRAY, std::move(a)};
}
inline MetaValue array_of_floats(ValueType t, std::vector<double> xs) {
  MetaArray a;
  a.elem_type = t;
  a.floats = std::move(xs);
  return MetaValue{ValueType::ARRAY, std::move(a)};
}
inline MetaValue array_of_strings(std::vector<std::string> xs) {
  MetaArray a;
  a.elem_type = ValueType::STRING;
  a.strings = std::move(xs);
  return MetaValue{ValueType::ARRAY, std::move(a)};
}

// A file with every metadata value type (edge values included), arrays of every element type
// (one empty, one longer than inspect's summary limit), alignment 64 and tensors of several types
// and ranks (one of them empty when `with_empty_tensor`).
inline Writer all_types_writer(bool with_empty_tensor = false) {
  Writer w;
  w.set_string("general.architecture", "test");
  w.set("t.u8", int_value(ValueType::U8, 255));
  w.set("t.i8", int_value(ValueType::I8, -128));
  w.set("t.u16", int_value(ValueType::U16, 65535));
  w.set("t.i16", int_value(ValueType::I16, -32768));
  w.set_u32("t.u32", 4294967295u);
  w.set_i32("t.i32", -2147483647 - 1);
  w.set_f32("t.f32", 3.5f);
  w.set_bool("t.bool", true);
  w.set_string("t.string", "h\xc3\xa9llo \"w\"\n\xe2\x9c\x93");
  w.set_string("t.empty_string", "");
  w.set_u64("t.u64", 18446744073709551615ull);
  w.set("t.i64", int_value(ValueType::I64, INT64_MIN));
  w.set("t.f64", MetaValue{ValueType::F64, 3.141592653589793});
  w.set_alignment(64);
  w.set("a.u8", array_of_ints(ValueType::U8, {0, 1, 255}));
  w.set("a.i8", array_of_ints(ValueType::I8, {-128, 0, 127}));
  w.set("a.u16", array_of_ints(ValueType::U16, {0, 65535}));
  w.set("a.i16", array_of_ints(ValueType::I16, {-32768, 32767}));
  w.set("a.u32", array_of_ints(ValueType::U32, {7, 4294967295LL}));
  w.set("a.i32", array_of_ints(ValueType::I32, {-5, 2147483647}));
  w.set("a.u64", array_of_ints(ValueType::U64, {0, -1}));  // -1 = 2^64-1
  w.set("a.i64", array_of_ints(ValueType::I64, {INT64_MIN, INT64_MAX}));
  w.set("a.f32", array_of_floats(ValueType::F32, {0.25, -1.5, 1e-8f}));
  w.set("a.f64", array_of_floats(ValueType::F64, {1e300, -0.0}));
  w.set("a.bool", array_of_ints(ValueType::BOOL, {1, 0, 1}));
  w.set("a.empty", array_of_ints(ValueType::I32, {}));
  std::vector<std::string> many;
  for (int i = 0; i < 100; ++i) many.push_back("tok" + std::to_string(i));
  w.set("a.strings", array_of_strings(many));

  auto add = [&](const char* name, GgmlType type, std::vector<int64_t> ne) {
    const TypeTraits& tr = type_traits(type);
    uint64_t n = static_cast<uint64_t>(ne[0] / tr.block_size) * tr.type_size;
    for (size_t d = 1; d < ne.size(); ++d) n *= static_cast<uint64_t>(ne[d]);
    w.add_tensor(name, type, ne, pattern_bytes(n, static_cast<uint32_t>(std::strlen(name))));
  };
  add("f32.vec", GgmlType::F32, {5});
  add("f16.mat", GgmlType::F16, {4, 3});
  add("bf16.mat", GgmlType::BF16, {8, 2});
  add("q8_0.mat", GgmlType::Q8_0, {64, 3});
  add("q4_K.mat", GgmlType::Q4_K, {256, 2});
  add("iq4_nl.4d", GgmlType::IQ4_NL, {32, 2, 2, 1});
  add("q6_K.3d", GgmlType::Q6_K, {256, 1, 2});
  add("i32.vec", GgmlType::I32, {3});
  if (with_empty_tensor) add("empty.mat", GgmlType::F32, {0, 4});
  return w;
}

// Little-endian builder for hand-made files.
struct Raw {
  std::vector<uint8_t> b;
  template <typename T>
  Raw& put(T v) {
    uint8_t tmp[sizeof(T)];
    std::memcpy(tmp, &v, sizeof(T));
    b.insert(b.end(), tmp, tmp + sizeof(T));
    return *this;
  }
  Raw& u32(uint32_t v) { return put(v); }
  Raw& u64(uint64_t v) { return put(v); }
  Raw& i64(int64_t v) { return put(v); }
  Raw& str(std::string_view s) {
    u64(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Raw& header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    b.insert(b.end(), {'G', 'G', 'U', 'F'});
    return u32(version).u64(n_tensors).u64(n_kv);
  }
  Raw& pad(size_t align) {
    b.resize((b.size() + align - 1) / align * align, 0);
    return *this;
  }
  size_t size() const { return b.size(); }
};

// Table-driven CRC-32 (zlib's polynomial), to compare tensor bytes with Python's zlib.crc32.
inline uint32_t crc32(const uint8_t* p, size_t n) {
  static const auto table = [] {
    std::vector<uint32_t> t(256);
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

}  // namespace tessera::gguf::testing
