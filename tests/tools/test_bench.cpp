// Tests for `tessera bench`: llama-bench compatible output (JSON fields, markdown table, CSV, JSONL),
// test naming (pp / tg / pp+tg / depth), errors. Timings are not checked, only their consistency.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "tests/tools/tool_test_util.h"

namespace tessera::test {
namespace {

using json = nlohmann::json;

class Bench : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    RunResult r = run_command(tessera_cmd("mkmodel --preset tiny --type Q8_0 --quiet --seed 2 --tokenizer-from '" +
                                          golden("models/tiny-q8_0.gguf") + "' --out '" + model() + "'"), true);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string model() { return dir_->file("tiny.gguf"); }
  static RunResult bench(const std::string& args) {
    return run_command(tessera_cmd("bench -m '" + model() + "' -t 2 " + args));
  }
  static TempDir* dir_;
};
TempDir* Bench::dir_ = nullptr;

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(line);
  return out;
}

TEST_F(Bench, JsonHasTheDocumentedFields) {
  RunResult r = bench("-p 64 -n 16 -r 2 -o json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json j = json::parse(r.output);  // throws (fails the test) on invalid JSON
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 2u);
  for (const char* key : {"model_filename", "model_type", "model_size", "model_n_params", "n_batch", "n_ubatch",
                          "n_threads", "type_k", "type_v", "n_prompt", "n_gen", "n_depth", "avg_ns", "stddev_ns",
                          "avg_ts", "stddev_ts", "samples_ns", "samples_ts", "backend", "device", "build_commit",
                          "test_time"})
    for (const json& row : j) EXPECT_TRUE(row.contains(key)) << key;
  const json &pp = j[0], &tg = j[1];
  EXPECT_EQ(pp["n_prompt"], 64);
  EXPECT_EQ(pp["n_gen"], 0);
  EXPECT_EQ(tg["n_prompt"], 0);
  EXPECT_EQ(tg["n_gen"], 16);
  for (const json& row : j) {
    EXPECT_EQ(row["model_filename"], model());
    EXPECT_EQ(row["model_type"].get<std::string>().rfind("qwen3moe", 0), 0u) << row["model_type"];
    EXPECT_GT(row["model_size"].get<uint64_t>(), 10000000u);
    // tiny: 2 x 4122 x 256 (embd, output) + 256 + 2 layers x 6652544 (experts, attention, router, norms).
    EXPECT_EQ(row["model_n_params"].get<uint64_t>(), 15415808u);
    EXPECT_EQ(row["n_threads"], 2);
    EXPECT_EQ(row["n_batch"], 2048);
    EXPECT_EQ(row["n_ubatch"], 512);
    EXPECT_EQ(row["type_k"], "f16");
    EXPECT_EQ(row["n_depth"], 0);
    EXPECT_EQ(row["backend"], "cpu");
    EXPECT_FALSE(row["device"].get<std::string>().empty());
    EXPECT_TRUE(std::regex_match(row["test_time"].get<std::string>(),
                                 std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")));
    // Two repetitions; t/s = tokens / seconds per sample; avg = mean; stddev = sample stddev.
    ASSERT_EQ(row["samples_ns"].size(), 2u);
    ASSERT_EQ(row["samples_ts"].size(), 2u);
    const double tokens = row["n_prompt"].get<double>() + row["n_gen"].get<double>();
    double sum = 0;
    for (int i = 0; i < 2; ++i) {
      const double ns = row["samples_ns"][i].get<double>(), ts = row["samples_ts"][i].get<double>();
      EXPECT_GT(ns, 0);
      EXPECT_NEAR(ts, tokens * 1e9 / ns, 1e-6 * ts);
      sum += ts;
    }
    const double a = row["samples_ts"][0], b = row["samples_ts"][1];
    EXPECT_NEAR(row["avg_ts"].get<double>(), sum / 2, 1e-9 * sum);
    EXPECT_NEAR(row["stddev_ts"].get<double>(), std::abs(a - b) / std::sqrt(2.0), 1e-6 * sum);
    EXPECT_NEAR(row["avg_ns"].get<double>(),
                (row["samples_ns"][0].get<double>() + row["samples_ns"][1].get<double>()) / 2, 1.0);
  }
}

TEST_F(Bench, MarkdownLooksLikeLlamaBench) {
  RunResult r = bench("-p 32 -n 8 -pg 16,4 -r 1 -o md");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::vector<std::string> lines = lines_of(r.output);
  ASSERT_GE(lines.size(), 6u) << r.output;
  auto squash = [](std::string s) { return std::regex_replace(s, std::regex(" +"), " "); };
  EXPECT_EQ(squash(lines[0]), "| model | size | params | backend | threads | test | t/s |");
  EXPECT_TRUE(std::regex_match(lines[1], std::regex(R"(\|( -+:? \|)+)"))) << lines[1];
  const std::regex row(R"(\| qwen3moe .* \| +[0-9.]+ MiB \| +15\.\d\d M \| CPU +\| +2 \| +(\S+) \| +[0-9.]+ ± [0-9.]+ \|)");
  std::vector<std::string> tests;
  for (size_t i = 2; i < 5; ++i) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(lines[i], m, row)) << lines[i];
    tests.push_back(m[1]);
  }
  EXPECT_EQ(tests, (std::vector<std::string>{"pp32", "tg8", "pp16+tg4"}));
  EXPECT_EQ(lines.back().rfind("build: ", 0), 0u) << lines.back();
}

TEST_F(Bench, DepthCsvAndJsonl) {
  RunResult r = bench("-p 16 -n 4 -d 32 -r 1 -ub 8 -o jsonl");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::vector<std::string> lines = lines_of(r.output);
  ASSERT_EQ(lines.size(), 2u) << r.output;
  json a = json::parse(lines[0]), b = json::parse(lines[1]);
  EXPECT_EQ(a["n_depth"], 32);
  EXPECT_EQ(a["n_prompt"], 16);
  EXPECT_EQ(a["n_ubatch"], 8);
  EXPECT_EQ(b["n_gen"], 4);

  r = bench("-p 16 -n 0 -d 0,32 -r 1 -o md");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex(R"(\|\s+pp16 \|)"))) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex(R"(\|\s+pp16 @ d32 \|)"))) << r.output;

  r = bench("-p 16 -n 4 -r 1 -o csv");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  lines = lines_of(r.output);
  ASSERT_EQ(lines.size(), 3u) << r.output;
  EXPECT_NE(lines[0].find("model_filename,model_type,model_size,model_n_params,n_batch,n_ubatch,n_threads"),
            std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("avg_ns,stddev_ns,avg_ts,stddev_ts,samples_ns,samples_ts"), std::string::npos);
  EXPECT_NE(lines[1].find("\"16\",\"0\",\"0\""), std::string::npos) << lines[1];  // n_prompt, n_gen, n_depth
}

TEST_F(Bench, ReferenceBackendAndKernelOverrides) {
  RunResult r = bench("-p 8 -n 2 -r 1 --backend ref -o jsonl");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(json::parse(lines_of(r.output)[0])["backend"], "ref");
  r = run_command(tessera_cmd("bench -m '" + model() + "' -p 8 -n 0 -r 1 --kernel gemm_q8_0=no_such_kernel"), true);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("no_such_kernel"), std::string::npos) << r.output;
}

TEST_F(Bench, BadArgumentsAreClearErrors) {
  RunResult r = run_command(tessera_cmd("bench -m '" + model() + "' -o xml"), true);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("-o must be"), std::string::npos) << r.output;
  r = run_command(tessera_cmd("bench -p 8"), true);
  EXPECT_EQ(r.exit_code, 1);
  r = run_command(tessera_cmd("bench -m '" + model() + "' -pg 5"), true);
  EXPECT_EQ(r.exit_code, 1);
  r = run_command(tessera_cmd("bench -m /nonexistent.gguf -p 8"), true);
  EXPECT_EQ(r.exit_code, 1);
  r = run_command(tessera_cmd("bench -m '" + model() + "' --backend vulkan"), true);
  EXPECT_EQ(r.exit_code, 1);
}

}  // namespace
}  // namespace tessera::test
