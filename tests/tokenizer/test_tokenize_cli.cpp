// `tessera tokenize` end to end: ids and --json output against the golden tokenizations.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

namespace {

const std::string kGolden = TESSERA_GOLDEN_DIR;

struct Result {
  int status;
  std::string out;
};

Result run(const std::string& args) {
  const std::string cmd = std::string("\"") + TESSERA_BINARY + "\" tokenize " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return {-1, ""};
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  return {pclose(p), out};
}

std::string write_temp(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::path(testing::TempDir()) / name;
  std::ofstream(path, std::ios::binary) << text;
  return path.string();
}

TEST(TokenizeCli, GoldenCasesThroughFiles) {
  std::ifstream in(kGolden + "/tokenizer/cases.json");
  const auto cases = nlohmann::json::parse(in);
  int checked = 0;
  for (size_t k = 0; k < cases.size(); k += 4) {  // every 4th case keeps the test quick
    const auto& c = cases[k];
    const std::string file = write_temp("tok_cli_case.txt", c["text"].get<std::string>());
    const auto r = run("-m \"" + kGolden + "/models/vocab-qwen3.gguf\" --file \"" + file + "\" --json --detok" +
                       (c["parse_special"].get<bool>() ? "" : " --no-special"));
    ASSERT_EQ(r.status, 0) << r.out;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["ids"], c["ids"]) << c["text"];
    EXPECT_EQ(j["detok"], c["detok"]) << c["text"];
    ++checked;
  }
  EXPECT_GE(checked, 15);
}

TEST(TokenizeCli, PlainOutputAndErrors) {
  const std::string model = "-m \"" + kGolden + "/models/vocab-qwen3.gguf\"";
  auto r = run(model + " --text \"Hello world<|im_end|>\"");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "9707 1879 151645\n");
  r = run(model + " --text \"<|im_end|>\" --no-special --json");
  EXPECT_EQ(r.out, "{\"ids\":[27,91,318,6213,91,29]}\n");
  r = run(model);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("--text"), std::string::npos) << r.out;
  r = run(model + " --text x --bogus");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("--bogus"), std::string::npos) << r.out;
  r = run("-m /nonexistent.gguf --text x");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("nonexistent"), std::string::npos) << r.out;
}

}  // namespace
