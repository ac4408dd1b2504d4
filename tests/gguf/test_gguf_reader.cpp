// GGUF reader tests: the golden models, typed accessors, and hand-made broken files that must each
// give one clear error naming the file, the field and the byte offset.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "core/error.h"
#include "gguf/gguf.h"
#include "tests/gguf/gguf_test_files.h"

namespace tessera::gguf {
namespace {

using testing::Raw;

const std::string kModels = std::string(TESSERA_GOLDEN_DIR) + "/models/";

// The message of the tessera::Error that parsing `raw` throws ("" when it parses).
std::string parse_error(const Raw& raw) {
  try {
    File::from_memory(raw.b, "bad.gguf");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_PARSE_ERROR(raw, ...)                                      \
  do {                                                                    \
    std::string msg_ = parse_error(raw);                                  \
    ASSERT_FALSE(msg_.empty()) << "expected a parse error";               \
    EXPECT_EQ(msg_.rfind("bad.gguf: ", 0), 0u) << msg_;                   \
    for (const char* part : {__VA_ARGS__}) EXPECT_NE(msg_.find(part), std::string::npos) << "missing '" << part << "' in: " << msg_; \
  } while (0)

TEST(GgufReader, OpensEveryGoldenModel) {
  for (const std::string& path : testing::golden_models(TESSERA_GOLDEN_DIR)) {
    SCOPED_TRACE(path);
    File f = File::open(path);
    EXPECT_EQ(f.version(), 3u);
    EXPECT_EQ(f.alignment(), 32u);
    EXPECT_EQ(f.data_offset() % 32, 0u);
    EXPECT_LE(f.data_offset(), f.file_size());
    EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "gpt2");
    for (const TensorInfo& t : f.tensors()) {
      ASSERT_NE(t.data, nullptr) << t.name;
      EXPECT_LE(f.data_offset() + t.offset + t.nbytes, f.file_size()) << t.name;
      EXPECT_EQ(t.nbytes, t.row_bytes() * static_cast<uint64_t>(t.ne[1] * t.ne[2] * t.ne[3])) << t.name;
    }
  }
}

// A copied file (huge-page memory) reads exactly like the mapped one: same metadata, same tensor
// bytes, data 2 MiB aligned; the mapped one stays zero-copy.
TEST(GgufReader, CopiedResidencyMatchesMapped) {
  for (const std::string& path : testing::golden_models(TESSERA_GOLDEN_DIR)) {
    SCOPED_TRACE(path);
    const File mapped = File::open(path);
    const File copied = File::open(path, Residency::Copied);
    EXPECT_EQ(mapped.residency(), Residency::Mapped);
    EXPECT_EQ(copied.residency(), Residency::Copied);
    EXPECT_EQ(copied.file_size(), mapped.file_size());
    EXPECT_EQ(copied.metadata().size(), mapped.metadata().size());
    ASSERT_EQ(copied.tensors().size(), mapped.tensors().size());
    EXPECT_EQ(copied.get_string("general.architecture"), mapped.get_string("general.architecture"));
    if (copied.tensors().empty()) continue;  // the vocabulary-only file
    const uint8_t* base = copied.tensors()[0].data - copied.data_offset() - copied.tensors()[0].offset;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(base) % (uintptr_t(2) << 20), 0u);
    for (size_t i = 0; i < mapped.tensors().size(); ++i) {
      const TensorInfo& a = mapped.tensors()[i];
      const TensorInfo& b = copied.tensors()[i];
      ASSERT_EQ(a.name, b.name);
      ASSERT_EQ(a.nbytes, b.nbytes);
      EXPECT_NE(a.data, b.data) << a.name;
      EXPECT_EQ(std::memcmp(a.data, b.data, a.nbytes), 0) << a.name;
    }
  }
}

TEST(GgufReader, TinyMoeFacts) {
  File f = File::open(kModels + "tiny-q4_k_m.gguf");
  EXPECT_EQ(f.get_string("general.architecture"), "qwen3moe");
  EXPECT_EQ(f.get_int("qwen3moe.block_count"), 2);
  EXPECT_EQ(f.get_int("qwen3moe.embedding_length"), 256);
  EXPECT_EQ(f.get_int("qwen3moe.expert_count"), 128);
  EXPECT_EQ(f.get_int("qwen3moe.expert_used_count"), 8);
  EXPECT_EQ(f.get_float("qwen3moe.rope.freq_base"), 1e7);
  EXPECT_EQ(f.get_float("qwen3moe.attention.layer_norm_rms_epsilon"), static_cast<double>(1e-6f));
  EXPECT_EQ(f.get_float("qwen3moe.block_count"), 2.0);  // integers are accepted as numbers
  EXPECT_FALSE(f.get_bool("tokenizer.ggml.add_bos_token"));
  EXPECT_EQ(f.get_int("tokenizer.ggml.eos_token_id"), 4098);

  const MetaArray& tokens = f.get_array("tokenizer.ggml.tokens");
  EXPECT_EQ(tokens.elem_type, ValueType::STRING);
  ASSERT_EQ(tokens.size(), 4122u);
  EXPECT_EQ(tokens.strings[0], "!");
  EXPECT_EQ(tokens.strings[4096], "<|endoftext|>");
  const MetaArray& types = f.get_array("tokenizer.ggml.token_type");
  EXPECT_EQ(types.elem_type, ValueType::I32);
  ASSERT_EQ(types.size(), 4122u);
  EXPECT_EQ(types.ints[0], 1);
  EXPECT_EQ(type_string(*f.find("tokenizer.ggml.merges")), "array[string]");

  ASSERT_EQ(f.tensors().size(), 27u);
  const TensorInfo& out = f.tensor("output.weight");
  EXPECT_EQ(out.type, GgmlType::Q6_K);
  EXPECT_EQ(out.n_dims, 2u);
  EXPECT_EQ(out.ne[0], 256);
  EXPECT_EQ(out.ne[1], 4122);
  EXPECT_EQ(out.ne[2], 1);
  const TensorInfo& down = f.tensor("blk.0.ffn_down_exps.weight");
  EXPECT_EQ(down.type, GgmlType::Q5_0);  // the documented fallback for 64-wide rows
  EXPECT_EQ(down.n_dims, 3u);
  EXPECT_EQ(down.ne[0], 64);
  EXPECT_EQ(down.ne[2], 128);
  // Norm weights are f32 values of a sane size.
  const TensorInfo& norm = f.tensor("output_norm.weight");
  EXPECT_EQ(norm.type, GgmlType::F32);
  for (int64_t i = 0; i < norm.ne[0]; ++i) {
    float x;
    std::memcpy(&x, norm.data + 4 * i, 4);
    EXPECT_TRUE(std::isfinite(x) && std::fabs(x) < 100.0f) << x;
  }
}

TEST(GgufReader, AccessorErrorsNameKeyAndTypes) {
  File f = File::open(kModels + "tiny-q8_0.gguf");
  auto message = [](auto&& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  std::string m = message([&] { f.get_int("general.architecture"); });
  EXPECT_NE(m.find("tiny-q8_0.gguf"), std::string::npos) << m;
  EXPECT_NE(m.find("'general.architecture' is string, expected an integer"), std::string::npos) << m;
  m = message([&] { f.get_string("qwen3moe.block_count"); });
  EXPECT_NE(m.find("'qwen3moe.block_count' is u32, expected string"), std::string::npos) << m;
  m = message([&] { f.get_bool("tokenizer.ggml.tokens"); });
  EXPECT_NE(m.find("is array[string], expected bool"), std::string::npos) << m;
  m = message([&] { f.get_array("qwen3moe.rope.freq_base"); });
  EXPECT_NE(m.find("is f32, expected array"), std::string::npos) << m;
  m = message([&] { f.get_float("general.name"); });
  EXPECT_NE(m.find("is string, expected a number"), std::string::npos) << m;
  m = message([&] { f.get_string("no.such.key"); });
  EXPECT_NE(m.find("'no.such.key' is missing"), std::string::npos) << m;
  m = message([&] { f.tensor("no.such.tensor"); });
  EXPECT_NE(m.find("tensor 'no.such.tensor' is missing"), std::string::npos) << m;

  EXPECT_EQ(f.get_int_or("no.such.key", 42), 42);
  EXPECT_EQ(f.get_string_or("no.such.key", "x"), "x");
  EXPECT_EQ(f.get_float_or("no.such.key", 0.5), 0.5);
  EXPECT_TRUE(f.get_bool_or("no.such.key", true));
  EXPECT_EQ(f.get_int_or("qwen3moe.block_count", 42), 2);
  EXPECT_THROW(f.get_int_or("general.name", 1), Error);  // present with the wrong type
  EXPECT_THROW(f.get_bool_or("general.name", true), Error);
  EXPECT_EQ(f.find_tensor("no.such.tensor"), nullptr);
  EXPECT_FALSE(f.has("no.such.key"));
  EXPECT_TRUE(f.has("general.name"));
}

TEST(GgufReader, AllValueTypesAndU64Range) {
  File f = File::from_memory(testing::all_types_writer().to_bytes(), "all.gguf");
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  EXPECT_EQ(f.get_int("t.u8"), 255);
  EXPECT_EQ(f.get_int("t.i8"), -128);
  EXPECT_EQ(f.get_int("t.u16"), 65535);
  EXPECT_EQ(f.get_int("t.i16"), -32768);
  EXPECT_EQ(f.get_int("t.u32"), 4294967295LL);
  EXPECT_EQ(f.get_int("t.i32"), INT32_MIN);
  EXPECT_EQ(f.get_int("t.i64"), INT64_MIN);
  EXPECT_THROW(f.get_int("t.u64"), Error);  // 2^64-1 does not fit int64
  EXPECT_EQ(f.get_float("t.u64"), 18446744073709551615.0);
  EXPECT_EQ(static_cast<uint64_t>(std::get<int64_t>(f.find("t.u64")->value)), UINT64_MAX);
  EXPECT_EQ(f.get_float("t.f32"), 3.5);
  EXPECT_EQ(f.get_float("t.f64"), 3.141592653589793);
  EXPECT_TRUE(f.get_bool("t.bool"));
  EXPECT_EQ(f.get_string("t.empty_string"), "");
  EXPECT_EQ(f.get_array("a.empty").size(), 0u);
  EXPECT_EQ(f.get_array("a.u64").ints[1], -1);
  EXPECT_EQ(f.get_array("a.f32").floats[2], static_cast<double>(1e-8f));
  EXPECT_EQ(f.get_array("a.bool").ints, (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(f.get_array("a.strings").strings[99], "tok99");
  for (const TensorInfo& t : f.tensors()) EXPECT_EQ(t.offset % 64, 0u) << t.name;
  EXPECT_EQ(f.tensor("iq4_nl.4d").n_dims, 4u);
  EXPECT_EQ(f.tensor("q6_K.3d").nbytes, 2u * 210u);
}

TEST(GgufReader, AcceptsVersion2AndEmptyTensors) {
  std::vector<uint8_t> bytes = testing::all_types_writer(/*with_empty_tensor=*/true).to_bytes();
  bytes[4] = 2;  // versions 2 and 3 share the layout
  File f = File::from_memory(bytes);
  EXPECT_EQ(f.version(), 2u);
  const TensorInfo& e = f.tensor("empty.mat");
  EXPECT_EQ(e.nbytes, 0u);
  EXPECT_EQ(e.n_elements(), 0);
}

TEST(GgufReader, FileWithoutTensorsMayEndUnpadded) {
  Raw r;
  r.header(3, 0, 1).str("general.name").u32(8).str("x");
  File f = File::from_memory(r.b);
  EXPECT_EQ(f.get_string("general.name"), "x");
  EXPECT_TRUE(f.tensors().empty());
}

TEST(GgufReader, OpenErrors) {
  try {
    File::open("/nonexistent/dir/x.gguf");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/x.gguf: cannot open"), std::string::npos) << e.what();
  }
  std::string empty = ::testing::TempDir() + "tessera_empty.gguf";
  { std::ofstream(empty, std::ios::binary); }
  for (Residency r : {Residency::Mapped, Residency::Copied}) {
    try {
      File::open(empty, r);
      FAIL();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("too small"), std::string::npos) << e.what();
    }
  }
  std::remove(empty.c_str());
  // a truncated model gives the same parse error whether it is mapped or copied
  const std::string cut = ::testing::TempDir() + "tessera_cut.gguf";
  {
    std::ifstream in(kModels + "tiny-q4_k_m.gguf", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(cut, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  std::string errs[2];
  for (Residency r : {Residency::Mapped, Residency::Copied}) {
    try {
      File::open(cut, r);
      ADD_FAILURE() << "a truncated file opened";
    } catch (const Error& e) {
      errs[r == Residency::Copied] = e.what();
    }
  }
  EXPECT_NE(errs[0].find("outside the data section"), std::string::npos) << errs[0];
  EXPECT_EQ(errs[0], errs[1]);
  std::remove(cut.c_str());
}

TEST(GgufReader, RejectsBadHeaders) {
  Raw bad_magic;
  bad_magic.b = {'G', 'G', 'M', 'L', 3, 0, 0, 0};
  EXPECT_PARSE_ERROR(bad_magic, "bad magic 'GGML'", "(offset 0)");
  Raw v1;
  v1.header(1, 0, 0);
  EXPECT_PARSE_ERROR(v1, "version 1 is not supported", "(offset 4)");
  Raw v4;
  v4.header(4, 0, 0);
  EXPECT_PARSE_ERROR(v4, "version 4 is not supported");
  Raw big_endian;
  big_endian.header(0x03000000, 0, 0);
  EXPECT_PARSE_ERROR(big_endian, "big-endian");
  Raw short_header;
  short_header.header(3, 0, 0).b.resize(20);
  EXPECT_PARSE_ERROR(short_header, "metadata count", "file ends", "(offset 16)");
  Raw neg;
  neg.header(3, static_cast<uint64_t>(-1), 0);
  EXPECT_PARSE_ERROR(neg, "tensor count -1 is negative", "(offset 8)");
  Raw many_kv;
  many_kv.header(3, 0, 1000000);
  EXPECT_PARSE_ERROR(many_kv, "metadata count 1000000 cannot fit", "(offset 16)");
  Raw many_tensors;
  many_tensors.header(3, 1ull << 40, 0);
  EXPECT_PARSE_ERROR(many_tensors, "tensor count 1099511627776 cannot fit", "(offset 8)");
}

TEST(GgufReader, RejectsBadMetadata) {
  Raw dup;
  dup.header(3, 0, 2).str("a.key").u32(4).u32(1).str("a.key").u32(4).u32(2);
  EXPECT_PARSE_ERROR(dup, "metadata 1 'a.key'", "duplicate key", "(offset 45)");
  Raw nested;
  nested.header(3, 0, 1).str("arr").u32(9).u32(9).u64(1);
  EXPECT_PARSE_ERROR(nested, "metadata 0 'arr'", "nested arrays", "(offset 39)");
  Raw bad_type;
  bad_type.header(3, 0, 1).str("k").u32(13).u32(0);
  EXPECT_PARSE_ERROR(bad_type, "unknown value type 13", "(offset 33)");
  Raw long_string;
  long_string.header(3, 0, 1).str("k").u32(8).u64(1ull << 62).u32(0);
  EXPECT_PARSE_ERROR(long_string, "string length 4611686018427387904 exceeds", "(offset 37)");
  Raw long_key;
  long_key.header(3, 0, 1).u64(1000).u32(0).u32(0).u32(0).u32(0);
  EXPECT_PARSE_ERROR(long_key, "metadata 0", "key: string length 1000", "(offset 24)");
  Raw huge_array;
  huge_array.header(3, 0, 1).str("k").u32(9).u32(10).u64(1ull << 61).u64(0);
  EXPECT_PARSE_ERROR(huge_array, "array count 2305843009213693952 cannot fit", "(offset 41)");
  Raw string_array;  // 100 strings need at least 800 bytes
  string_array.header(3, 0, 1).str("k").u32(9).u32(8).u64(100).u64(0).u64(0);
  EXPECT_PARSE_ERROR(string_array, "array count 100 cannot fit");
  Raw bad_bool;
  bad_bool.header(3, 0, 1).str("k").u32(7).put<uint8_t>(2);
  EXPECT_PARSE_ERROR(bad_bool, "bool value 2 is not 0 or 1");
  Raw align_type;
  align_type.header(3, 0, 1).str("general.alignment").u32(5).u32(64);
  EXPECT_PARSE_ERROR(align_type, "general.alignment must be u32, found i32");
  Raw align_value;
  align_value.header(3, 0, 1).str("general.alignment").u32(4).u32(48);
  EXPECT_PARSE_ERROR(align_value, "general.alignment 48 is not a power of two");
  Raw align_huge;  // no tensors, but a writer copying it would have to pad to 1 GiB
  align_huge.header(3, 0, 1).str("general.alignment").u32(4).u32(1u << 30);
  EXPECT_PARSE_ERROR(align_huge, "general.alignment 1073741824 is above the supported 16777216");
  Raw truncated;
  truncated.header(3, 0, 1).str("k").u32(6).put<uint16_t>(0);
  EXPECT_PARSE_ERROR(truncated, "f32 value: needs 4 bytes but the file ends 2 bytes later");
}

// A file with one tensor info (f32 unless told) and enough data for it.
Raw one_tensor(std::string_view name, std::vector<int64_t> ne, uint32_t type = 0, uint64_t offset = 0,
               uint32_t n_dims_override = 0, size_t data_bytes = 4096) {
  Raw r;
  r.header(3, 1, 0).str(name).u32(n_dims_override ? n_dims_override : static_cast<uint32_t>(ne.size()));
  for (int64_t n : ne) r.i64(n);
  r.u32(type).u64(offset).pad(32);
  r.b.resize(r.b.size() + data_bytes, 0);
  return r;
}

TEST(GgufReader, RejectsBadTensorInfos) {
  EXPECT_EQ(parse_error(one_tensor("w", {4, 2})), "");
  EXPECT_PARSE_ERROR(one_tensor(std::string(64, 'n'), {4}), "name of 64 bytes is too long", "(offset 24)");
  EXPECT_EQ(parse_error(one_tensor(std::string(63, 'n'), {4})), "");
  EXPECT_PARSE_ERROR(one_tensor("w", {}, 0, 0, 0), "tensor 0 'w': n_dims 0 is not in 1..4", "(offset 33)");
  EXPECT_PARSE_ERROR(one_tensor("w", {1, 1, 1, 1, 1}), "n_dims 5 is not in 1..4");
  EXPECT_PARSE_ERROR(one_tensor("w", {4}, 4), "unknown ggml type id 4", "(offset 45)");
  EXPECT_PARSE_ERROR(one_tensor("w", {4}, 40), "unknown ggml type id 40");
  EXPECT_PARSE_ERROR(one_tensor("w", {33}, 8), "ne[0] = 33 is not a multiple of the q8_0 block size 32");
  EXPECT_PARSE_ERROR(one_tensor("w", {4, -2}), "ne[1] = -2 is negative", "(offset 45)");
  EXPECT_PARSE_ERROR(one_tensor("w", {1ll << 40, 1ll << 40}), "element count overflows");
  EXPECT_PARSE_ERROR(one_tensor("w", {1ll << 62}), "byte size overflows");
  EXPECT_PARSE_ERROR(one_tensor("w", {4}, 0, 16), "data offset 16 is not a multiple of the alignment 32");
  EXPECT_PARSE_ERROR(one_tensor("w", {2048}), "lies outside the data section");
  EXPECT_PARSE_ERROR(one_tensor("w", {4}, 0, 4096), "lies outside the data section");
  EXPECT_PARSE_ERROR(one_tensor("w", {4}, 0, 1ull << 63), "lies outside the data section");
  // An empty tensor is fine; one right at the end of the data is fine.
  EXPECT_EQ(parse_error(one_tensor("w", {0, 3})), "");
  EXPECT_EQ(parse_error(one_tensor("w", {4}, 0, 4096 - 32)), "");

  Raw dup;
  dup.header(3, 2, 0);
  for (int i = 0; i < 2; ++i) dup.str("w").u32(1).i64(4).u32(0).u64(0);
  dup.pad(32).b.resize(dup.b.size() + 64, 0);
  EXPECT_PARSE_ERROR(dup, "tensor 1 'w': duplicate tensor name", "(offset 57)");
}

TEST(GgufReader, OpensTheFullVocabQuickly) {
  // Two 151k-entry string arrays; the time is printed (not asserted: speed belongs to benchmarks).
  auto t0 = std::chrono::steady_clock::now();
  File f = File::open(kModels + "vocab-qwen3.gguf");
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(f.get_array("tokenizer.ggml.tokens").size(), 151669u);
  EXPECT_EQ(f.get_array("tokenizer.ggml.merges").size(), 151387u);
  std::printf("vocab-qwen3.gguf opened in %.1f ms\n", s * 1e3);
}

}  // namespace
}  // namespace tessera::gguf
