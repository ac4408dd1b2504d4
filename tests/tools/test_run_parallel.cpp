// `tessera run --parallel N --prompts FILE`: plain and JSONL prompt lines, every output printed with
// its index and equal to the same prompt run alone (greedy), per-request and total throughput lines.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "tests/tools/tool_test_util.h"

namespace tessera::test {
namespace {

std::string tiny() { return golden("models/tiny-q8_0.gguf"); }

// The lines of `out` that start with "[i] ", prefix removed, joined with '\n'.
std::string output_of(const std::string& out, int i) {
  const std::string prefix = "[" + std::to_string(i) + "] ";
  std::string text;
  bool first = true;
  size_t p = 0;
  while (p < out.size()) {
    size_t q = out.find('\n', p);
    if (q == std::string::npos) q = out.size();
    const std::string line = out.substr(p, q - p);
    if (line.rfind(prefix, 0) == 0) {
      if (!first) text += '\n';
      text += line.substr(prefix.size());
      first = false;
    }
    p = q + 1;
  }
  return text;
}

TEST(RunParallel, MatchesSingleRuns) {
  TempDir dir;
  const std::string file = dir.file("prompts.txt");
  const std::vector<std::string> prompts = {"hi", "The quick brown fox", "def main():", "once upon a time"};
  {
    std::ofstream f(file);
    f << prompts[0] << "\n\n" << "{\"prompt\": \"" << prompts[1] << "\"}\n" << prompts[2] << "\r\n"
      << "{\"prompt\": \"" << prompts[3] << "\", \"other\": 1}\n";
  }
  const std::string common = " -n 12 --temp 0 --ignore-eos -t 1";
  const RunResult par =
      run_command(tessera_cmd("run -m '" + tiny() + "' --parallel 2 --prompts '" + file + "'" + common), false);
  ASSERT_EQ(par.exit_code, 0) << par.output;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const RunResult one = run_command(tessera_cmd("run -m '" + tiny() + "' -p '" + prompts[i] + "'" + common), false);
    ASSERT_EQ(one.exit_code, 0) << one.output;
    std::string want = one.output;
    if (!want.empty() && want.back() == '\n') want.pop_back();  // single runs end with a newline
    EXPECT_EQ(output_of(par.output, static_cast<int>(i)), want) << i;
  }
  const RunResult both =
      run_command(tessera_cmd("run -m '" + tiny() + "' --parallel 2 --prompts '" + file + "'" + common), true);
  EXPECT_NE(both.output.find("total: 4 requests, 2 in parallel"), std::string::npos) << both.output;
  EXPECT_TRUE(std::regex_search(both.output, std::regex(R"(tessera: 3 +\d+ +\d+ +12 )"))) << both.output;
}

TEST(RunParallel, BadPromptFiles) {
  TempDir dir;
  const std::string bad_json = dir.file("bad.jsonl"), empty = dir.file("empty.txt");
  std::ofstream(bad_json) << "{\"text\": \"no prompt key\"}\n";
  std::ofstream(empty) << "\n  \n";
  RunResult r = run_command(tessera_cmd("run -m '" + tiny() + "' --prompts '" + bad_json + "'"), true);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("bad.jsonl:1: a JSON line needs a string \"prompt\""), std::string::npos) << r.output;
  r = run_command(tessera_cmd("run -m '" + tiny() + "' --prompts '" + empty + "'"), true);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("no prompts"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace tessera::test
