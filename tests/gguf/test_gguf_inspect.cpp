// `tessera gguf inspect` tests: on every golden model its JSON lists exactly what the Python gguf
// package reads (metadata, tensor names, ggml types, shapes, offsets, sizes); long arrays are
// summarised unless --full; the text form has the table and totals; bad input is one clear error.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cctype>
#include <filesystem>

#include "gguf/gguf.h"
#include "tests/gguf/gguf_test_files.h"
#include "tests/gguf/gguf_test_run.h"

namespace tessera::gguf {
namespace {

using nlohmann::json;
using testing::quote_arg;
using testing::run_command;

// One test per golden model (ctest runs them in parallel; vocab-qwen3's Python read takes seconds).
class GgufInspectGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(GgufInspectGolden, MatchesPython) {
  const std::string path = std::string(TESSERA_GOLDEN_DIR) + "/models/" + GetParam();
  json ours = testing::inspect_json(path, /*full=*/true);
  json py = testing::python_view(path, /*with_crc=*/false);
  ASSERT_TRUE(ours.is_object()) << "tessera gguf inspect failed";
  ASSERT_TRUE(py.is_object()) << "the python reader failed";
  ASSERT_EQ(ours.size(), 2u);  // exactly {"metadata", "tensors"}
  ASSERT_TRUE(ours["metadata"].is_object());
  ASSERT_TRUE(ours["tensors"].is_array());

  ASSERT_EQ(ours["tensors"].size(), py["tensors"].size());
  for (size_t i = 0; i < py["tensors"].size(); ++i) {
    const json& t = ours["tensors"][i];
    EXPECT_EQ(t.size(), 5u);
    EXPECT_EQ(t, py["tensors"][i]) << "ours: " << t.dump() << "\npython: " << py["tensors"][i].dump();
  }
  EXPECT_EQ(ours["metadata"].size(), py["metadata"].size());
  for (const auto& [k, v] : py["metadata"].items()) EXPECT_EQ(ours["metadata"][k], v) << k;

  // Our reader's value types are the ones Python sees.
  File f = File::open(path);
  for (const auto& [k, v] : f.metadata()) EXPECT_EQ(py["types"][k], type_string(v)) << k;
  EXPECT_EQ(py["data_offset"], f.data_offset());
}

std::vector<std::string> golden_names() {
  std::vector<std::string> names;
  for (const std::string& p : testing::golden_models(TESSERA_GOLDEN_DIR)) names.push_back(std::filesystem::path(p).filename());
  return names;
}

INSTANTIATE_TEST_SUITE_P(Models, GgufInspectGolden, ::testing::ValuesIn(golden_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string n = std::filesystem::path(info.param).stem();
                           for (char& c : n)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

TEST(GgufInspect, CoversEveryGoldenModel) { EXPECT_EQ(golden_names().size(), 9u); }

TEST(GgufInspect, SummarisesLongArraysUnlessFull) {
  std::string path = std::string(TESSERA_GOLDEN_DIR) + "/models/vocab-qwen3.gguf";
  json j = testing::inspect_json(path, /*full=*/false);
  ASSERT_TRUE(j.is_object());
  const json& tokens = j["metadata"]["tokenizer.ggml.tokens"];
  ASSERT_TRUE(tokens.is_object()) << tokens.dump().substr(0, 200);
  EXPECT_EQ(tokens["array"], "string");
  EXPECT_EQ(tokens["count"], 151669);
  ASSERT_EQ(tokens["head"].size(), 8u);
  EXPECT_EQ(tokens["head"][0], "!");
  EXPECT_EQ(j["metadata"]["tokenizer.ggml.token_type"]["array"], "i32");
  EXPECT_EQ(j["metadata"]["tokenizer.ggml.bos_token_id"], 151643);
  EXPECT_TRUE(j["tensors"].is_array());
  EXPECT_TRUE(j["tensors"].empty());

  json full = testing::inspect_json(path, /*full=*/true);
  ASSERT_TRUE(full["metadata"]["tokenizer.ggml.tokens"].is_array());
  EXPECT_EQ(full["metadata"]["tokenizer.ggml.tokens"].size(), 151669u);
  EXPECT_EQ(full["metadata"]["tokenizer.ggml.tokens"][151645], "<|im_end|>");
}

TEST(GgufInspect, TextHasTableAndTotals) {
  std::string path = std::string(TESSERA_GOLDEN_DIR) + "/models/tiny-iq4_nl.gguf";
  auto r = run_command(quote_arg(TESSERA_BINARY) + " gguf inspect " + quote_arg(path));
  ASSERT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("general.architecture"), std::string::npos);
  EXPECT_NE(r.out.find("(4122 items)"), std::string::npos);
  EXPECT_NE(r.out.find("totals by type"), std::string::npos);
  File f = File::open(path);
  for (const TensorInfo& t : f.tensors()) EXPECT_NE(r.out.find(t.name), std::string::npos) << t.name;
  EXPECT_NE(r.out.find("iq4_nl"), std::string::npos);
  EXPECT_NE(r.out.find(fmt::format("{:<7}  {:>8}", "all", f.tensors().size())), std::string::npos) << r.out;
}

TEST(GgufInspect, BadInputIsOneClearError) {
  std::string bin = quote_arg(TESSERA_BINARY);
  auto r = run_command(bin + " gguf inspect /nonexistent.gguf 2>&1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("/nonexistent.gguf: cannot open"), std::string::npos) << r.out;
  // A truncated golden file: the error names the file and an offset.
  std::string cut = ::testing::TempDir() + "tessera_cut.gguf";
  {
    std::vector<uint8_t> bytes(4000);
    std::FILE* in = std::fopen((std::string(TESSERA_GOLDEN_DIR) + "/models/tiny-q8_0.gguf").c_str(), "rb");
    ASSERT_NE(in, nullptr);
    ASSERT_EQ(std::fread(bytes.data(), 1, bytes.size(), in), bytes.size());
    std::fclose(in);
    std::FILE* out = std::fopen(cut.c_str(), "wb");
    std::fwrite(bytes.data(), 1, bytes.size(), out);
    std::fclose(out);
  }
  r = run_command(bin + " gguf inspect " + quote_arg(cut) + " 2>&1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("tessera_cut.gguf: metadata 4 'tokenizer.ggml.tokens'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(offset "), std::string::npos) << r.out;
  std::remove(cut.c_str());
  r = run_command(bin + " gguf frobnicate x 2>&1");
  EXPECT_NE(r.status, 0);
  r = run_command(bin + " gguf inspect a b 2>&1");
  EXPECT_NE(r.status, 0);
  r = run_command(bin + " gguf inspect --bogus x 2>&1");
  EXPECT_NE(r.status, 0);
}

}  // namespace
}  // namespace tessera::gguf
