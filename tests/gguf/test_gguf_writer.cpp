// GGUF writer tests: round trips through our reader (synthetic files and every golden model, byte
// for byte) and through the Python gguf package, plus the writer's own input checks.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "core/error.h"
#include "gguf/gguf.h"
#include "tests/gguf/gguf_test_files.h"
#include "tests/gguf/gguf_test_run.h"

namespace tessera::gguf {
namespace {

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

// Copies every metadata entry and tensor of `src` into a Writer.
Writer copy_of(const File& src) {
  Writer w;
  w.copy_metadata(src);
  for (const TensorInfo& t : src.tensors())
    w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne.begin(), t.ne.begin() + t.n_dims),
                 std::vector<uint8_t>(t.data, t.data + t.nbytes));
  return w;
}

void expect_same_content(const File& a, const File& b) {
  ASSERT_EQ(a.metadata().size(), b.metadata().size());
  for (size_t i = 0; i < a.metadata().size(); ++i) {
    EXPECT_EQ(a.metadata()[i].first, b.metadata()[i].first);
    EXPECT_TRUE(a.metadata()[i].second == b.metadata()[i].second) << a.metadata()[i].first;
  }
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (size_t i = 0; i < a.tensors().size(); ++i) {
    const TensorInfo& x = a.tensors()[i];
    const TensorInfo& y = b.tensors()[i];
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.type, y.type) << x.name;
    EXPECT_EQ(x.n_dims, y.n_dims) << x.name;
    EXPECT_EQ(x.ne, y.ne) << x.name;
    ASSERT_EQ(x.nbytes, y.nbytes) << x.name;
    EXPECT_EQ(std::memcmp(x.data, y.data, x.nbytes), 0) << x.name;
  }
}

TEST(GgufWriter, RoundTripsEveryValueType) {
  std::vector<uint8_t> bytes = testing::all_types_writer(true).to_bytes();
  File f = File::from_memory(bytes);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.metadata().size(), 28u);
  // Copying what was read gives the same bytes back.
  EXPECT_EQ(copy_of(f).to_bytes(), bytes);
}

TEST(GgufWriter, WriteMatchesToBytes) {
  Writer w = testing::all_types_writer();
  std::string path = ::testing::TempDir() + "tessera_writer_test.gguf";
  w.write(path);
  EXPECT_EQ(read_all(path), w.to_bytes());
  std::remove(path.c_str());
  EXPECT_THROW(w.write("/nonexistent/dir/x.gguf"), Error);
}

TEST(GgufWriter, SetReplacesInPlaceAndAlignmentIsMetadata) {
  Writer w;
  w.set_u32("a", 1);
  w.set_string("b", "x");
  w.set_u32("a", 2);
  File f = File::from_memory(w.to_bytes());
  ASSERT_EQ(f.metadata().size(), 2u);
  EXPECT_EQ(f.metadata()[0].first, "a");
  EXPECT_EQ(f.get_int("a"), 2);
  EXPECT_FALSE(f.has("general.alignment"));  // the default 32 is not written

  Writer w2;
  w2.set_u32("general.alignment", 128);  // as a key, it sets the layout too
  w2.add_tensor("t", GgmlType::F32, {3}, std::vector<uint8_t>(12, 1));
  w2.add_tensor("u", GgmlType::F32, {3}, std::vector<uint8_t>(12, 2));
  File f2 = File::from_memory(w2.to_bytes());
  EXPECT_EQ(f2.alignment(), 128u);
  EXPECT_EQ(f2.tensor("u").offset, 128u);
  EXPECT_EQ(f2.data_offset() % 128, 0u);
}

TEST(GgufWriter, RejectsBadInput) {
  Writer w;
  EXPECT_THROW(w.set("k", MetaValue{ValueType::U8, int64_t{300}}), Error);
  EXPECT_THROW(w.set("k", MetaValue{ValueType::I8, int64_t{-129}}), Error);
  EXPECT_THROW(w.set("k", MetaValue{ValueType::U32, std::string("x")}), Error);
  EXPECT_THROW(w.set("k", MetaValue{ValueType::STRING, int64_t{1}}), Error);
  EXPECT_THROW(w.set("k", MetaValue{static_cast<ValueType>(13), int64_t{1}}), Error);
  MetaArray nested;
  nested.elem_type = ValueType::ARRAY;
  EXPECT_THROW(w.set("k", MetaValue{ValueType::ARRAY, nested}), Error);
  MetaArray misplaced;  // string elements in the ints vector
  misplaced.elem_type = ValueType::STRING;
  misplaced.ints = {1};
  EXPECT_THROW(w.set("k", MetaValue{ValueType::ARRAY, misplaced}), Error);
  EXPECT_THROW(w.set("k", testing::array_of_ints(ValueType::U16, {70000})), Error);
  EXPECT_THROW(w.set_alignment(48), Error);
  EXPECT_THROW(w.set_alignment(0), Error);
  EXPECT_THROW(w.set_alignment(1u << 30), Error);
  EXPECT_THROW(w.set("general.alignment", MetaValue{ValueType::I32, int64_t{64}}), Error);
  EXPECT_THROW(w.set_u32("general.alignment", 3), Error);

  EXPECT_THROW(w.add_tensor(std::string(64, 'x'), GgmlType::F32, {1}, std::vector<uint8_t>(4)), Error);
  EXPECT_THROW(w.add_tensor("t", GgmlType::F32, {}, {}), Error);
  EXPECT_THROW(w.add_tensor("t", GgmlType::F32, {1, 1, 1, 1, 1}, std::vector<uint8_t>(4)), Error);
  EXPECT_THROW(w.add_tensor("t", GgmlType::F32, {-1}, {}), Error);
  EXPECT_THROW(w.add_tensor("t", GgmlType::Q8_0, {16}, std::vector<uint8_t>(17)), Error);
  EXPECT_THROW(w.add_tensor("t", static_cast<GgmlType>(4), {1}, std::vector<uint8_t>(1)), Error);
  EXPECT_THROW(w.add_tensor("t", GgmlType::F32, {2, 2}, std::vector<uint8_t>(15)), Error);
  w.add_tensor("t", GgmlType::F32, {2, 2}, std::vector<uint8_t>(16));
  EXPECT_THROW(w.add_tensor("t", GgmlType::F32, {2, 2}, std::vector<uint8_t>(16)), Error);
}

// Every golden model, read, copied into a Writer and written again, is the same file byte for byte
// (llama.cpp lays files out exactly as our writer does), so metadata and tensors are identical too.
TEST(GgufWriter, GoldenModelsRoundTripByteIdentical) {
  for (const std::string& path : testing::golden_models(TESSERA_GOLDEN_DIR)) {
    SCOPED_TRACE(path);
    File src = File::open(path);
    std::vector<uint8_t> bytes = copy_of(src).to_bytes();
    File back = File::from_memory(bytes, "copy of " + path);
    expect_same_content(src, back);
    EXPECT_EQ(back.data_offset(), src.data_offset());
    EXPECT_TRUE(bytes == read_all(path)) << "rewritten file differs from the original";
  }
}

// Files from our writer read back the same with the Python gguf package: metadata values and types,
// tensor names, types, shapes, offsets, sizes and the CRC-32 of every tensor's bytes.
void expect_python_agrees(const std::string& path) {
  SCOPED_TRACE(path);
  File f = File::open(path);
  nlohmann::json py = testing::python_view(path, /*with_crc=*/true);
  ASSERT_TRUE(py.is_object()) << "python could not read " << path;
  EXPECT_EQ(py["version"], 3);
  EXPECT_EQ(py["alignment"], f.alignment());
  EXPECT_EQ(py["data_offset"], f.data_offset());
  ASSERT_EQ(py["types"].size(), f.metadata().size());
  for (const auto& [k, v] : f.metadata()) EXPECT_EQ(py["types"][k], type_string(v)) << k;
  ASSERT_EQ(py["tensors"].size(), f.tensors().size());
  for (size_t i = 0; i < f.tensors().size(); ++i) {
    const TensorInfo& t = f.tensors()[i];
    const nlohmann::json& p = py["tensors"][i];
    EXPECT_EQ(p["name"], t.name);
    EXPECT_EQ(p["type"], type_name(t.type)) << t.name;
    EXPECT_EQ(p["offset"], t.offset) << t.name;
    EXPECT_EQ(p["bytes"], t.nbytes) << t.name;
    EXPECT_EQ(py["crc32"][t.name], testing::crc32(t.data, t.nbytes)) << t.name;
  }
  // Values: compared through `tessera gguf inspect --json --full`, which prints what our reader read.
  nlohmann::json ours = testing::inspect_json(path, /*full=*/true);
  ASSERT_TRUE(ours.is_object());
  EXPECT_EQ(ours["metadata"], py["metadata"]);
  EXPECT_EQ(ours["tensors"], py["tensors"]);
}

TEST(GgufWriter, PythonReadsOurFiles) {
  std::string dir = ::testing::TempDir();
  std::string all = dir + "tessera_all_types.gguf";
  testing::all_types_writer().write(all);
  expect_python_agrees(all);
  std::remove(all.c_str());

  std::string mini = dir + "tessera_mini_q4_k_m.gguf";
  testing::mini_writer(File::open(std::string(TESSERA_GOLDEN_DIR) + "/models/tiny-q4_k_m.gguf"), 100, 100).write(mini);
  expect_python_agrees(mini);
  std::remove(mini.c_str());
}

}  // namespace
}  // namespace tessera::gguf
