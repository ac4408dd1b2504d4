// GGUF reader (mmap, validated before use) and writer. Facts: shared reference "GGUF" section.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "gguf/ggml_types.h"

namespace tessera::gguf {

// general.alignment: a power of two, 32 when absent; above this it is refused (reader and writer)
// so that a tiny file cannot demand gigabytes of padding.
constexpr uint32_t kMaxAlignment = 1u << 24;

// Metadata value type ids as stored in the file.
enum class ValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};
std::string_view value_type_name(ValueType t);  // "u32", "string", "array", ...
// Smallest number of bytes one value of this type occupies in a file (string: its u64 length).
uint64_t value_type_min_size(ValueType t);

// An array value: elements decoded into the one vector that fits their type.
struct MetaArray {
  ValueType elem_type = ValueType::U8;
  std::vector<std::string> strings;  // STRING elements
  std::vector<int64_t> ints;         // U8..I64 and BOOL elements (u64 values above INT64_MAX keep their bits)
  std::vector<double> floats;        // F32 / F64 elements
  size_t size() const;
};

// One metadata value: `type` says which alternative is held (all integer types -> int64_t,
// u64 as its bit pattern; F32/F64 -> double; BOOL -> bool; STRING -> string; ARRAY -> MetaArray).
struct MetaValue {
  ValueType type = ValueType::U8;
  std::variant<int64_t, double, bool, std::string, MetaArray> value;
};
// "u32", "string", "array[string]", ...
std::string type_string(const MetaValue& v);
// Deep equality: same type and same values (floats compared bit for bit).
bool operator==(const MetaArray& a, const MetaArray& b);
bool operator==(const MetaValue& a, const MetaValue& b);

struct TensorInfo {
  std::string name;
  GgmlType type = GgmlType::F32;
  uint32_t n_dims = 0;
  std::array<int64_t, 4> ne = {1, 1, 1, 1};  // ggml order: ne[0] is contiguous; unused dims are 1
  uint64_t offset = 0;                       // from the start of the data section
  uint64_t nbytes = 0;
  const uint8_t* data = nullptr;             // points into the mapping

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  size_t row_bytes() const { return tessera::row_bytes(type, ne[0]); }  // bytes of one ne[0] row
};

// How an opened file's bytes are held. Mapped: a zero-copy mmap of the page cache (4 KiB pages).
// Copied: read once into anonymous memory advised for 2 MiB transparent huge pages, where the CPU
// streams weights faster (no TLB miss per 4 KiB, hardware prefetch runs across 4 KiB boundaries).
enum class Residency { Mapped, Copied };

// What the reader accepts: magic "GGUF", version 2 or 3 (same 64-bit layout; big-endian files are
// refused), metadata keys unique, values of the 13 known types, arrays of non-array elements, bool
// bytes 0 or 1, general.alignment a u32 power of two <= kMaxAlignment. Tensor names unique and < 64
// bytes, n_dims 1..4, ne[i] >= 0 (a dimension of 0 makes an empty tensor of 0 bytes), a known type
// with ne[0] a multiple of its block size, element and byte counts without 64-bit overflow, offset
// aligned, data inside the file. Every count and length is checked against the bytes left before
// anything is allocated. A file without tensors may end before the aligned start of its data.
class File {
 public:
  // Maps (or copies) and validates a file. Any problem throws tessera::Error naming the file, the
  // field and the byte offset, e.g. "x.gguf: tensor 3 'blk.0.attn_q.weight': n_dims 7 > 4 (offset 1234)".
  static File open(const std::string& path, Residency residency = Residency::Mapped);
  // Validates an in-memory image (fuzzing, tests). `name` is used in messages.
  static File from_memory(std::vector<uint8_t> bytes, std::string name = "<memory>");

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // absolute offset of the data section
  uint64_t file_size() const { return size_; }
  Residency residency() const { return residency_; }

  // Metadata in file order.
  const std::vector<std::pair<std::string, MetaValue>>& metadata() const { return kv_; }
  const MetaValue* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }

  // Typed accessors. Missing key or wrong type -> tessera::Error naming key, actual and expected type.
  std::string get_string(std::string_view key) const;
  int64_t get_int(std::string_view key) const;   // any integer type
  double get_float(std::string_view key) const;  // F32 / F64 (integers accepted too)
  bool get_bool(std::string_view key) const;
  const MetaArray& get_array(std::string_view key) const;
  // *_or: the fallback when the key is absent (a present key of the wrong type still throws).
  std::string get_string_or(std::string_view key, std::string fallback) const;
  int64_t get_int_or(std::string_view key, int64_t fallback) const;
  double get_float_or(std::string_view key, double fallback) const;
  bool get_bool_or(std::string_view key, bool fallback) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;
  const TensorInfo& tensor(std::string_view name) const;  // throws naming the missing tensor

 private:
  struct Mapping;
  std::shared_ptr<Mapping> map_;  // keeps the bytes alive (mmap or owned vector)
  std::string path_;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  uint64_t size_ = 0;
  Residency residency_ = Residency::Mapped;
  std::vector<std::pair<std::string, MetaValue>> kv_;
  std::vector<TensorInfo> tensors_;
  friend class Parser;
};

// Builds a GGUF file (version 3). Metadata keeps insertion order; tensors are laid out in order,
// each aligned to `alignment`.
class Writer {
 public:
  void set(std::string key, MetaValue value);  // replaces an existing key in place
  void set_string(std::string key, std::string v);
  void set_u32(std::string key, uint32_t v);
  void set_i32(std::string key, int32_t v);
  void set_u64(std::string key, uint64_t v);
  void set_f32(std::string key, float v);
  void set_bool(std::string key, bool v);
  void set_alignment(uint32_t a);  // also written as general.alignment when not 32
  // Copies every metadata entry of `src` whose key starts with `prefix` ("" = all).
  void copy_metadata(const File& src, std::string_view prefix = "");

  // data must hold exactly the bytes of a tensor of that type and shape (ne in ggml order).
  void add_tensor(std::string name, GgmlType type, std::vector<int64_t> ne, std::vector<uint8_t> data);

  void write(const std::string& path) const;  // throws tessera::Error on I/O failure
  std::vector<uint8_t> to_bytes() const;

 private:
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> ne;
    std::vector<uint8_t> data;
  };
  uint32_t alignment_ = 32;
  std::vector<std::pair<std::string, MetaValue>> kv_;
  std::vector<Tensor> tensors_;
};

}  // namespace tessera::gguf
