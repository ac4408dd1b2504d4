// GGUF reader: maps a file (or takes an in-memory image) and validates every field before use.
// Any problem is one tessera::Error naming the file, the field and its byte offset.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "core/error.h"
#include "gguf/gguf.h"

namespace tessera::gguf {

// The bytes of a file: an mmap'ed region (of the file, or anonymous memory holding a copy) or an owned vector.
struct File::Mapping {
  const uint8_t* data = nullptr;
  uint64_t size = 0;
  void* mapped = nullptr;  // non-null when mmap'ed
  size_t mapped_len = 0;
  std::vector<uint8_t> owned;

  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (mapped) munmap(mapped, mapped_len);
  }
};

namespace {

constexpr char kMagic[4] = {'G', 'G', 'U', 'F'};
constexpr uint32_t kMaxNameBytes = 63;  // ggml: tensor names are < 64 bytes (GGML_MAX_NAME)
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;          // key length, value type, smallest value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;  // name length, n_dims, ne[0], type, offset

bool valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::F64); }

uint32_t byteswap32(uint32_t v) {
  return (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
}

// Printable form of a short byte string for messages (non-printable bytes as \xNN, cut at 64 bytes).
std::string printable(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < 64; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\'') out += static_cast<char>(c);
    else out += fmt::format("\\x{:02x}", c);
  }
  if (s.size() > 64) out += "...";
  return out;
}

}  // namespace

// Walks the file front to back. `where_` describes the record being read (for messages).
class Parser {
 public:
  Parser(File& f, const uint8_t* data, uint64_t size) : f_(f), p_(data), size_(size) {}

  void parse() {
    parse_header();
    parse_metadata();
    parse_tensor_infos();
    place_tensors();
  }

 private:
  File& f_;
  const uint8_t* p_;
  uint64_t size_;
  uint64_t pos_ = 0;
  std::string where_;  // "metadata 3 'general.name'", "tensor 5 'x'"
  uint64_t n_tensors_ = 0;
  uint64_t n_kv_ = 0;
  std::vector<uint64_t> offset_field_pos_;  // where each tensor's offset field sits

  template <typename... Args>
  [[noreturn]] void fail(uint64_t at, fmt::format_string<Args...> f, Args&&... args) {
    std::string msg = fmt::format(f, std::forward<Args>(args)...);
    if (where_.empty()) throw_error("{}: {} (offset {})", f_.path_, msg, at);
    throw_error("{}: {}: {} (offset {})", f_.path_, where_, msg, at);
  }

  uint64_t remaining() const { return size_ - pos_; }

  void need(uint64_t n, std::string_view field) {
    if (n > remaining())
      fail(pos_, "{}: needs {} bytes but the file ends {} bytes later", field, n, remaining());
  }

  template <typename T>
  T read(std::string_view field) {
    need(sizeof(T), field);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  // u64 length + bytes; the length must fit in what is left of the file.
  std::string read_string(std::string_view field) {
    uint64_t at = pos_;
    uint64_t len = read<uint64_t>(field);
    if (len > remaining())
      fail(at, "{}: string length {} exceeds the {} bytes left in the file", field, len, remaining());
    std::string s(reinterpret_cast<const char*>(p_ + pos_), static_cast<size_t>(len));
    pos_ += len;
    return s;
  }

  // A count of records of at least `min_bytes` each must fit in what is left of the file.
  void check_count(uint64_t at, std::string_view field, uint64_t count, uint64_t min_bytes) {
    if (count > remaining() / min_bytes)
      fail(at, "{} {} cannot fit in the {} bytes left in the file (each needs at least {} bytes)", field,
           count, remaining(), min_bytes);
  }

  void parse_header() {
    if (size_ < 4) fail(0, "file of {} bytes is too small to be GGUF", size_);
    if (std::memcmp(p_, kMagic, 4) != 0)
      fail(0, "bad magic '{}' (expected 'GGUF')", printable(std::string_view(reinterpret_cast<const char*>(p_), 4)));
    pos_ = 4;
    uint64_t at = pos_;
    uint32_t version = read<uint32_t>("version");
    if (version != 2 && version != 3) {
      uint32_t swapped = byteswap32(version);
      if (swapped == 2 || swapped == 3) fail(at, "big-endian GGUF (version {}) is not supported", swapped);
      fail(at, "GGUF version {} is not supported (only 2 and 3)", version);
    }
    f_.version_ = version;
    // Versions 2 and 3 share this layout: 64-bit counts and lengths.
    at = pos_;
    uint64_t n_tensors = read<uint64_t>("tensor count");
    if (n_tensors > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail(at, "tensor count {} is negative", static_cast<int64_t>(n_tensors));
    uint64_t at_kv = pos_;
    uint64_t n_kv = read<uint64_t>("metadata count");
    if (n_kv > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail(at_kv, "metadata count {} is negative", static_cast<int64_t>(n_kv));
    check_count(at_kv, "metadata count", n_kv, kMinKvBytes);
    check_count(at, "tensor count", n_tensors, kMinTensorInfoBytes);
    n_tensors_ = n_tensors;
    n_kv_ = n_kv;
  }

  void parse_metadata() {
    std::unordered_set<std::string> keys;
    for (uint64_t i = 0; i < n_kv_; ++i) {
      where_ = fmt::format("metadata {}", i);
      uint64_t key_at = pos_;
      std::string key = read_string("key");
      where_ = fmt::format("metadata {} '{}'", i, printable(key));
      if (!keys.insert(key).second) fail(key_at, "duplicate key");
      uint64_t type_at = pos_;
      uint32_t type = read<uint32_t>("value type");
      if (!valid_value_type(type)) fail(type_at, "unknown value type {}", type);
      uint64_t value_at = pos_;
      MetaValue v = read_value(static_cast<ValueType>(type));
      if (key == "general.alignment") check_alignment(v, type_at, value_at);
      f_.kv_.emplace_back(std::move(key), std::move(v));
    }
    where_.clear();
  }

  void check_alignment(const MetaValue& v, uint64_t type_at, uint64_t value_at) {
    if (v.type != ValueType::U32)
      fail(type_at, "general.alignment must be u32, found {}", type_string(v));
    uint64_t a = static_cast<uint64_t>(std::get<int64_t>(v.value));
    if (a == 0 || (a & (a - 1)) != 0) fail(value_at, "general.alignment {} is not a power of two", a);
    if (a > kMaxAlignment) fail(value_at, "general.alignment {} is above the supported {}", a, kMaxAlignment);
    f_.alignment_ = static_cast<uint32_t>(a);
  }

  // One scalar of an integer type, widened to int64 (u64 keeps its bit pattern).
  int64_t read_int(ValueType t) {
    switch (t) {
      case ValueType::U8: return read<uint8_t>("u8 value");
      case ValueType::I8: return read<int8_t>("i8 value");
      case ValueType::U16: return read<uint16_t>("u16 value");
      case ValueType::I16: return read<int16_t>("i16 value");
      case ValueType::U32: return read<uint32_t>("u32 value");
      case ValueType::I32: return read<int32_t>("i32 value");
      case ValueType::U64: return static_cast<int64_t>(read<uint64_t>("u64 value"));
      case ValueType::I64: return read<int64_t>("i64 value");
      default: break;
    }
    fail(pos_, "internal: {} is not an integer type", value_type_name(t));
  }

  bool read_bool() {
    uint64_t at = pos_;
    uint8_t b = read<uint8_t>("bool value");
    if (b > 1) fail(at, "bool value {} is not 0 or 1", b);
    return b == 1;
  }

  MetaValue read_value(ValueType t) {
    MetaValue v;
    v.type = t;
    switch (t) {
      case ValueType::F32: v.value = static_cast<double>(read<float>("f32 value")); break;
      case ValueType::F64: v.value = read<double>("f64 value"); break;
      case ValueType::BOOL: v.value = read_bool(); break;
      case ValueType::STRING: v.value = read_string("string value"); break;
      case ValueType::ARRAY: v.value = read_array(); break;
      default: v.value = read_int(t); break;
    }
    return v;
  }

  MetaArray read_array() {
    MetaArray a;
    uint64_t at = pos_;
    uint32_t et = read<uint32_t>("array element type");
    if (et == static_cast<uint32_t>(ValueType::ARRAY)) fail(at, "nested arrays are not supported");
    if (!valid_value_type(et)) fail(at, "unknown array element type {}", et);
    a.elem_type = static_cast<ValueType>(et);
    uint64_t count_at = pos_;
    uint64_t n = read<uint64_t>("array count");
    check_count(count_at, "array count", n, value_type_min_size(a.elem_type));
    switch (a.elem_type) {
      case ValueType::STRING:
        a.strings.reserve(n);
        for (uint64_t i = 0; i < n; ++i) a.strings.push_back(read_string("array string"));
        break;
      case ValueType::F32:
        a.floats.resize(n);
        for (uint64_t i = 0; i < n; ++i) a.floats[i] = read<float>("array f32");
        break;
      case ValueType::F64:
        a.floats.resize(n);
        for (uint64_t i = 0; i < n; ++i) a.floats[i] = read<double>("array f64");
        break;
      case ValueType::BOOL:
        a.ints.resize(n);
        for (uint64_t i = 0; i < n; ++i) a.ints[i] = read_bool() ? 1 : 0;
        break;
      default:
        a.ints.resize(n);
        for (uint64_t i = 0; i < n; ++i) a.ints[i] = read_int(a.elem_type);
        break;
    }
    return a;
  }

  void parse_tensor_infos() {
    std::unordered_set<std::string> names;
    offset_field_pos_.reserve(n_tensors_);
    for (uint64_t i = 0; i < n_tensors_; ++i) {
      where_ = fmt::format("tensor {}", i);
      TensorInfo t;
      uint64_t name_at = pos_;
      t.name = read_string("name");
      where_ = fmt::format("tensor {} '{}'", i, printable(t.name));
      if (t.name.size() > kMaxNameBytes)
        fail(name_at, "name of {} bytes is too long (at most {})", t.name.size(), kMaxNameBytes);
      if (!names.insert(t.name).second) fail(name_at, "duplicate tensor name");

      uint64_t dims_at = pos_;
      t.n_dims = read<uint32_t>("n_dims");
      if (t.n_dims < 1 || t.n_dims > 4) fail(dims_at, "n_dims {} is not in 1..4", t.n_dims);
      for (uint32_t d = 0; d < t.n_dims; ++d) {
        uint64_t ne_at = pos_;
        t.ne[d] = read<int64_t>("ne");
        if (t.ne[d] < 0) fail(ne_at, "ne[{}] = {} is negative", d, t.ne[d]);
      }

      uint64_t type_at = pos_;
      uint32_t type_id = read<uint32_t>("type");
      const TypeTraits* tr = find_type_traits(type_id);
      if (!tr) fail(type_at, "unknown ggml type id {}", type_id);
      t.type = tr->type;
      if (t.ne[0] % tr->block_size != 0)
        fail(dims_at, "ne[0] = {} is not a multiple of the {} block size {}", t.ne[0], tr->name, tr->block_size);

      // Element count and byte size, each step checked against overflow. Zero-sized dims are
      // allowed: such a tensor holds no bytes.
      int64_t n_el = 1;
      for (int d = 0; d < 4; ++d)
        if (__builtin_mul_overflow(n_el, t.ne[d], &n_el)) fail(dims_at, "element count overflows 64 bits");
      uint64_t nbytes = static_cast<uint64_t>(t.ne[0] / tr->block_size);
      bool overflow = __builtin_mul_overflow(nbytes, uint64_t{tr->type_size}, &nbytes);
      for (int d = 1; d < 4; ++d) overflow |= __builtin_mul_overflow(nbytes, static_cast<uint64_t>(t.ne[d]), &nbytes);
      if (overflow) fail(dims_at, "byte size overflows 64 bits");
      t.nbytes = nbytes;

      offset_field_pos_.push_back(pos_);
      t.offset = read<uint64_t>("offset");
      f_.tensors_.push_back(std::move(t));
    }
    where_.clear();
  }

  // Data starts at the first aligned position after the tensor infos; every tensor must be aligned
  // and lie inside the file. (A file without tensors may end before that aligned position.)
  void place_tensors() {
    const uint64_t align = f_.alignment_;
    f_.data_offset_ = (pos_ + align - 1) / align * align;
    for (size_t i = 0; i < f_.tensors_.size(); ++i) {
      TensorInfo& t = f_.tensors_[i];
      where_ = fmt::format("tensor {} '{}'", i, printable(t.name));
      uint64_t at = offset_field_pos_[i];
      if (t.offset % align != 0) fail(at, "data offset {} is not a multiple of the alignment {}", t.offset, align);
      const uint64_t data_bytes = f_.data_offset_ <= size_ ? size_ - f_.data_offset_ : 0;
      if (f_.data_offset_ > size_ || t.offset > data_bytes || t.nbytes > data_bytes - t.offset)
        fail(at, "data [{}, +{} bytes) lies outside the data section (file {} bytes, data starts at {})",
             t.offset, t.nbytes, size_, f_.data_offset_);
      t.data = p_ + f_.data_offset_ + t.offset;
    }
    where_.clear();
  }
};

namespace {

// Reads a whole file into anonymous memory whose start is 2 MiB aligned and advised for huge pages
// (a hint: without transparent huge pages it is plain memory). Read-only once filled.
// `mapped` / `mapped_len` take the region as soon as it exists, so the caller's unmap covers errors.
const uint8_t* copy_into_huge_pages(int fd, uint64_t size, const std::string& path, void*& mapped,
                                    size_t& mapped_len) {
  constexpr size_t kHuge = size_t(2) << 20;
  const size_t len = (static_cast<size_t>(size) + 2 * kHuge - 1) / kHuge * kHuge;  // + alignment slack
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw_error("{}: cannot allocate {} bytes to copy it into: {}", path, len, std::strerror(errno));
  mapped = p;
  mapped_len = len;
  uint8_t* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(p) + kHuge - 1) / kHuge * kHuge);
  madvise(base, static_cast<size_t>(size), MADV_HUGEPAGE);
  for (uint64_t done = 0; done < size;) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(size - done, uint64_t(64) << 20));
    const ssize_t got = pread(fd, base + done, want, static_cast<off_t>(done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw_error("{}: read failed at byte {}: {}", path, done, std::strerror(errno));
    if (got == 0) throw_error("{}: file ended at byte {} of {} while reading it", path, done, size);
    done += static_cast<uint64_t>(got);
  }
  mprotect(p, len, PROT_READ);
  return base;
}

}  // namespace

File File::open(const std::string& path, Residency residency) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_error("{}: cannot open: {}", path, std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw_error("{}: cannot stat: {}", path, std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw_error("{}: not a regular file", path);
  }
  auto map = std::make_shared<Mapping>();
  map->size = static_cast<uint64_t>(st.st_size);
  if (map->size > 0 && residency == Residency::Copied) {
    try {
      map->data = copy_into_huge_pages(fd, map->size, path, map->mapped, map->mapped_len);
    } catch (...) {
      ::close(fd);
      throw;
    }
  } else if (map->size > 0) {
    void* p = mmap(nullptr, static_cast<size_t>(map->size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      throw_error("{}: cannot map {} bytes: {}", path, map->size, std::strerror(e));
    }
    map->mapped = p;
    map->mapped_len = static_cast<size_t>(map->size);
    map->data = static_cast<const uint8_t*>(p);
  }
  ::close(fd);  // the mapping stays valid
  const Residency map_residency = map->size > 0 ? residency : Residency::Mapped;

  File f;
  f.map_ = std::move(map);
  f.path_ = path;
  f.size_ = f.map_->size;
  f.residency_ = map_residency;
  Parser(f, f.map_->data, f.size_).parse();
  return f;
}

File File::from_memory(std::vector<uint8_t> bytes, std::string name) {
  auto map = std::make_shared<Mapping>();
  map->owned = std::move(bytes);
  map->data = map->owned.data();
  map->size = map->owned.size();
  File f;
  f.map_ = std::move(map);
  f.path_ = std::move(name);
  f.size_ = f.map_->size;
  Parser(f, f.map_->data, f.size_).parse();
  return f;
}

}  // namespace tessera::gguf
