// Deterministic mutation test of the GGUF reader: small valid files built from the golden models are
// truncated, bit-flipped, given absurd counts / lengths / offsets / n_dims / type ids, and spliced
// (duplicate keys and tensors). Every variant must parse or throw one tessera::Error naming the file
// and an offset: no crash, no other exception, and no allocation far beyond the input's size.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <random>

#include "core/error.h"
#include "gguf/gguf.h"
#include "tests/gguf/gguf_test_files.h"

// Largest single allocation since the last reset (global operator new is replaced in this binary).
static std::atomic<size_t> g_largest_alloc{0};

void* operator new(size_t n) {
  size_t cur = g_largest_alloc.load(std::memory_order_relaxed);
  while (n > cur && !g_largest_alloc.compare_exchange_weak(cur, n)) {
  }
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }

namespace tessera::gguf {
namespace {

constexpr const char* kName = "mutant.gguf";

// Where the structural fields of a valid file sit, found by walking it independently of the reader.
struct Field {
  size_t at;
  int width;  // 4 or 8
};
struct Layout {
  std::vector<Field> fields;
  std::vector<std::pair<size_t, size_t>> kv_records;      // [begin, end)
  std::vector<std::pair<size_t, size_t>> tensor_records;  // [begin, end)
};

template <typename T>
T load(const std::vector<uint8_t>& b, size_t at) {
  T v;
  std::memcpy(&v, b.data() + at, sizeof(T));
  return v;
}

Layout walk(const std::vector<uint8_t>& b) {
  Layout L;
  size_t p = 4;
  L.fields.push_back({p, 4});
  L.fields.push_back({p + 4, 8});
  L.fields.push_back({p + 12, 8});
  uint64_t n_tensors = load<uint64_t>(b, 8), n_kv = load<uint64_t>(b, 16);
  p = 24;
  auto skip_string = [&](bool record) {
    if (record) L.fields.push_back({p, 8});
    p += 8 + load<uint64_t>(b, p);
  };
  for (uint64_t i = 0; i < n_kv; ++i) {
    size_t begin = p;
    skip_string(true);
    uint32_t type = load<uint32_t>(b, p);
    L.fields.push_back({p, 4});
    p += 4;
    auto skip_value = [&](uint32_t t, bool record) {
      if (t == 8) skip_string(record);
      else p += value_type_min_size(static_cast<ValueType>(t));
    };
    if (type == 9) {
      uint32_t et = load<uint32_t>(b, p);
      L.fields.push_back({p, 4});
      L.fields.push_back({p + 4, 8});
      uint64_t n = load<uint64_t>(b, p + 4);
      p += 12;
      for (uint64_t j = 0; j < n; ++j) skip_value(et, j < 3);
    } else {
      skip_value(type, true);
    }
    L.kv_records.push_back({begin, p});
  }
  for (uint64_t i = 0; i < n_tensors; ++i) {
    size_t begin = p;
    skip_string(true);
    uint32_t n_dims = load<uint32_t>(b, p);
    L.fields.push_back({p, 4});
    p += 4;
    for (uint32_t d = 0; d < n_dims; ++d, p += 8) L.fields.push_back({p, 8});
    L.fields.push_back({p, 4});  // type
    L.fields.push_back({p + 4, 8});  // offset
    p += 12;
    L.tensor_records.push_back({begin, p});
  }
  return L;
}

struct Tally {
  size_t ok = 0, errors = 0;
};

// Parses one variant; fails the test on anything but success or a clean tessera::Error.
void check(const std::vector<uint8_t>& bytes, Tally& tally, const char* what, const char* must_contain = nullptr) {
  g_largest_alloc = 0;
  try {
    File f = File::from_memory(bytes, kName);
    ++tally.ok;
    for (const TensorInfo& t : f.tensors()) ASSERT_LE(f.data_offset() + t.offset + t.nbytes, bytes.size()) << what;
    if (must_contain) ADD_FAILURE() << what << ": parsed, expected an error with '" << must_contain << "'";
  } catch (const Error& e) {
    ++tally.errors;
    std::string m = e.what();
    ASSERT_EQ(m.rfind(std::string(kName) + ": ", 0), 0u) << what << ": " << m;
    ASSERT_NE(m.find("(offset "), std::string::npos) << what << ": " << m;
    if (must_contain) EXPECT_NE(m.find(must_contain), std::string::npos) << what << ": " << m;
  } catch (const std::exception& e) {
    FAIL() << what << ": unexpected exception " << e.what();
  }
  // Bounded by the input: the copy, plus arrays of at most (bytes left / element size) entries.
  ASSERT_LE(g_largest_alloc.load(), 8 * bytes.size() + 4096) << what;
}

template <typename T>
void store(std::vector<uint8_t>& b, size_t at, T v) {
  std::memcpy(b.data() + at, &v, sizeof(T));
}

void mutate_all_ways(const std::vector<uint8_t>& base, Tally& tally) {
  const Layout L = walk(base);
  const uint64_t n = base.size();

  // 1. Truncation at every point (every 3rd past the first 2 KiB), and one byte of garbage appended.
  for (size_t len = 0; len < base.size(); len += len < 2048 ? 1 : 3)
    check(std::vector<uint8_t>(base.begin(), base.begin() + static_cast<std::ptrdiff_t>(len)), tally, "truncated");

  // 2. Absurd values in every structural field.
  const uint64_t values[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 31, 32, 33, 63, 64, 65, 255, 256,
                             0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 1ull << 32, 1ull << 40,
                             1ull << 62, (1ull << 63) - 1, 1ull << 63, ~0ull, ~0ull - 7, n - 1, n, n + 1, n / 2};
  for (const Field& fld : L.fields)
    for (uint64_t v : values) {
      std::vector<uint8_t> b = base;
      if (fld.width == 4) store<uint32_t>(b, fld.at, static_cast<uint32_t>(v));
      else store<uint64_t>(b, fld.at, v);
      check(b, tally, "field");
    }

  // 3. Duplicated and dropped records.
  for (const auto& [begin, end] : L.kv_records) {
    std::vector<uint8_t> b = base;
    b.insert(b.begin() + static_cast<std::ptrdiff_t>(end), base.begin() + static_cast<std::ptrdiff_t>(begin),
             base.begin() + static_cast<std::ptrdiff_t>(end));
    store<uint64_t>(b, 16, load<uint64_t>(base, 16) + 1);
    check(b, tally, "duplicate key", "duplicate key");
    std::vector<uint8_t> d = base;
    d.erase(d.begin() + static_cast<std::ptrdiff_t>(begin), d.begin() + static_cast<std::ptrdiff_t>(end));
    store<uint64_t>(d, 16, load<uint64_t>(base, 16) - 1);
    check(d, tally, "dropped key");
  }
  for (const auto& [begin, end] : L.tensor_records) {
    std::vector<uint8_t> b = base;
    b.insert(b.begin() + static_cast<std::ptrdiff_t>(end), base.begin() + static_cast<std::ptrdiff_t>(begin),
             base.begin() + static_cast<std::ptrdiff_t>(end));
    store<uint64_t>(b, 8, load<uint64_t>(base, 8) + 1);
    check(b, tally, "duplicate tensor", "duplicate tensor name");
  }

  // 4. Random byte-level damage (fixed seed: the same variants every run).
  std::mt19937_64 rng(base.size());
  for (int i = 0; i < 1500; ++i) {
    std::vector<uint8_t> b = base;
    int ops = 1 + static_cast<int>(rng() % 6);
    for (int k = 0; k < ops && !b.empty(); ++k) {
      size_t at = rng() % b.size();
      switch (rng() % 6) {
        case 0: b[at] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
        case 1: b[at] = static_cast<uint8_t>(rng()); break;
        case 2: b[at] = (rng() & 1) ? 0xff : 0x00; break;
        case 3:
          if (at + 8 <= b.size()) store<uint64_t>(b, at, values[rng() % std::size(values)]);
          break;
        case 4: b.erase(b.begin() + static_cast<std::ptrdiff_t>(at), b.begin() + static_cast<std::ptrdiff_t>(std::min(b.size(), at + 1 + rng() % 16))); break;
        case 5: b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), 1 + rng() % 16, static_cast<uint8_t>(rng())); break;
      }
    }
    check(b, tally, "random");
  }
}

std::vector<std::vector<uint8_t>> base_files() {
  std::vector<std::vector<uint8_t>> out;
  for (const std::string& path : testing::golden_models(TESSERA_GOLDEN_DIR))
    out.push_back(testing::mini_writer(File::open(path)).to_bytes());
  out.push_back(testing::all_types_writer(true).to_bytes());
  std::vector<uint8_t> v2 = testing::all_types_writer(false).to_bytes();
  v2[4] = 2;
  out.push_back(v2);
  return out;
}

TEST(GgufMutation, EveryVariantParsesOrFailsCleanly) {
  Tally tally;
  size_t n_bases = 0;
  for (const std::vector<uint8_t>& base : base_files()) {
    SCOPED_TRACE(::testing::Message() << "base file " << n_bases << " (" << base.size() << " bytes)");
    ASSERT_NO_THROW(File::from_memory(base, kName));  // each base is valid
    mutate_all_ways(base, tally);
    ++n_bases;
    if (::testing::Test::HasFatalFailure()) return;
  }
  std::printf("%zu base files, %zu variants: %zu parsed, %zu rejected\n", n_bases, tally.ok + tally.errors, tally.ok,
              tally.errors);
  EXPECT_GT(tally.ok + tally.errors, 20000u);
  EXPECT_GT(tally.ok, 0u);
  EXPECT_GT(tally.errors, 0u);
}

// The header and metadata region of every golden file (tensor data cut away): every truncation point
// in its first 4 KiB and absurd values in its header fields give clean errors.
TEST(GgufMutation, GoldenHeadersTruncatedAndDamaged) {
  Tally tally;
  for (const std::string& path : testing::golden_models(TESSERA_GOLDEN_DIR)) {
    SCOPED_TRACE(path);
    File f = File::open(path);
    std::FILE* in = std::fopen(path.c_str(), "rb");
    ASSERT_NE(in, nullptr);
    std::vector<uint8_t> head(static_cast<size_t>(std::min<uint64_t>(f.data_offset(), f.file_size())));
    ASSERT_EQ(std::fread(head.data(), 1, head.size(), in), head.size());
    std::fclose(in);
    for (size_t len = 0; len < std::min<size_t>(head.size(), 4096); ++len)
      check(std::vector<uint8_t>(head.begin(), head.begin() + static_cast<std::ptrdiff_t>(len)), tally, "cut");
    check(head, tally, "header only", f.tensors().empty() ? nullptr : "outside the data section");
    for (size_t at : {4, 8, 16}) {
      std::vector<uint8_t> b = head;
      store<uint32_t>(b, at, 0xffffffffu);
      check(b, tally, "header field");
    }
    if (::testing::Test::HasFatalFailure()) return;
  }
  EXPECT_GT(tally.errors, 30000u);
}

}  // namespace
}  // namespace tessera::gguf
