// Command-line hardening: integer flags are range-checked, never truncated (-c 4294967360 used to
// become a 64-token cache); thread counts are capped; NaN / negative sampling values are refused;
// `tokenize --file DIR` and `kernels --help`; `run -n 32` generates and reports exactly 32 tokens.
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "tests/tools/tool_test_util.h"

namespace tessera::test {
namespace {

// A model path that does not exist: argument errors must come first, so no case below ever loads a
// model or starts threads with the bad value.
const std::string kNoModel = "/nonexistent/tessera-test-model.gguf";

struct BadArgs {
  std::string args;                // after `tessera`
  std::vector<std::string> want;   // substrings of the error message
};

void PrintTo(const BadArgs& b, std::ostream* os) { *os << b.args; }

class CliRejects : public ::testing::TestWithParam<BadArgs> {};

TEST_P(CliRejects, WithAClearMessage) {
  const BadArgs& b = GetParam();
  const RunResult r = run_command(tessera_cmd(b.args), true);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  for (const std::string& w : b.want) EXPECT_NE(r.output.find(w), std::string::npos) << "'" << w << "' in: " << r.output;
}

const std::string kRun = "run -m " + kNoModel + " -p hi ";
const std::string kLogits = "logits -m " + kNoModel + " --prompt hi --out /dev/null ";
const std::string kBench = "bench -m " + kNoModel + " ";
const std::string kQuantize = "quantize " + kNoModel + " /nonexistent/out.gguf Q8_0 ";
const std::string kMkmodel = "mkmodel --preset tiny --dry-run --tokenizer-from " + kNoModel + " ";

INSTANTIATE_TEST_SUITE_P(
    Integers, CliRejects,
    ::testing::Values(
        // threads: >= 1 and capped at 4x the hardware threads
        BadArgs{kRun + "-t 0", {"-t: 0 is out of range [1, "}},
        BadArgs{kRun + "-t -1", {"-t: -1 is out of range [1, "}},
        BadArgs{kRun + "--threads 1000000", {"-t: 1000000 is out of range [1, ", "hardware threads"}},
        BadArgs{kRun + "-t 4294967297", {"-t: 4294967297 is out of range"}},
        BadArgs{kLogits + "-t 0", {"-t: 0 is out of range"}},
        BadArgs{kLogits + "-t 1000000", {"-t: 1000000 is out of range", "hardware threads"}},
        BadArgs{kBench + "-t 0", {"-t: 0 is out of range"}},
        BadArgs{kBench + "-t 2,1000000", {"-t: 1000000 is out of range", "hardware threads"}},
        BadArgs{kQuantize + "--threads 0", {"--threads: 0 is out of range"}},
        BadArgs{kQuantize + "--threads 1000000", {"--threads: 1000000 is out of range", "hardware threads"}},
        BadArgs{kMkmodel + "--threads 1000000", {"--threads: 1000000 is out of range", "hardware threads"}},
        // sizes: never truncated to int
        BadArgs{kRun + "-c 4294967360", {"-c: 4294967360 is out of range [1, "}},
        BadArgs{kRun + "-c 0", {"-c: 0 is out of range [1, "}},
        BadArgs{kRun + "-b 4294967297", {"-b: 4294967297 is out of range [1, "}},
        BadArgs{kRun + "-n 4294967328", {"-n: 4294967328 is out of range [-1, "}},
        BadArgs{kRun + "-n -2", {"-n: -2 is out of range [-1, "}},
        BadArgs{kRun + "-n 99999999999999999999", {"-n: 99999999999999999999 is out of range"}},
        BadArgs{kRun + "--top-k -1", {"--top-k: -1 is out of range [0, "}},
        BadArgs{kRun + "--repeat-last-n 4294967296", {"--repeat-last-n: 4294967296 is out of range [-1, "}},
        BadArgs{kRun + "--random-prompt 4294967297", {"--random-prompt: 4294967297 is out of range"}},
        BadArgs{kRun + "--depth -1", {"--depth: -1 is out of range [0, "}},
        BadArgs{kRun + "--seed -1", {"--seed", "'-1'"}},
        BadArgs{kRun + "--seed 12abc", {"--seed", "'12abc'"}},
        BadArgs{kBench + "-r 4294967297", {"-r: 4294967297 is out of range [1, 10000]"}},
        BadArgs{kBench + "-p 512,4294967297", {"-p: 4294967297 is out of range [0, "}},
        BadArgs{kBench + "-n -1", {"-n: -1 is out of range [0, "}},
        BadArgs{kBench + "-d 99999999999", {"-d: 99999999999 is out of range [0, "}},
        BadArgs{kBench + "-b 0", {"-b: 0 is out of range [1, "}},
        BadArgs{kBench + "-ub 4294967808", {"-ub: 4294967808 is out of range [1, "}},
        BadArgs{kBench + "-pg 4294967297,1", {"-pg: 4294967297 is out of range [0, "}},
        BadArgs{kBench + "-pg 512,-1", {"-pg: -1 is out of range [0, "}},
        BadArgs{kMkmodel + "--layers 4294967297", {"--layers: 4294967297 is out of range [1, 1024]"}},
        BadArgs{kMkmodel + "--seed -5", {"--seed: -5 is out of range [0, "}},
        BadArgs{kRun + "--parallel 0", {"--parallel: 0 is out of range [1, 1024]"}},
        BadArgs{kRun + "--kv-tokens 4294967297", {"--kv-tokens: 4294967297 is out of range [1, "}},
        BadArgs{kRun + "--parallel 2", {"--parallel", "go with --prompts"}},
        BadArgs{"run -m " + kNoModel + " --prompts /nonexistent/prompts.txt -p hi", {"--prompts does not combine"}}));

INSTANTIATE_TEST_SUITE_P(
    Sampling, CliRejects,
    ::testing::Values(BadArgs{kRun + "--temp nan", {"--temp: nan is out of range [0, "}},
                      BadArgs{kRun + "--temp -1", {"--temp: -1 is out of range [0, "}},
                      BadArgs{kRun + "--temperature inf", {"--temp: inf is out of range [0, "}},
                      BadArgs{kRun + "--top-p 1.5", {"--top-p: 1.5 is out of range [0, 1]"}},
                      BadArgs{kRun + "--top-p nan", {"--top-p: nan is out of range [0, 1]"}},
                      BadArgs{kRun + "--min-p -0.1", {"--min-p: -0.1 is out of range [0, 1]"}},
                      BadArgs{kRun + "--min-p 2", {"--min-p: 2 is out of range [0, 1]"}},
                      BadArgs{kRun + "--repeat-penalty -1", {"--repeat-penalty: -1 is out of range"}},
                      BadArgs{kRun + "--repeat-penalty 0", {"--repeat-penalty: 0", "> 0"}},
                      BadArgs{kRun + "--repeat-penalty nan", {"--repeat-penalty: nan is out of range"}},
                      BadArgs{kRun + "--presence-penalty nan", {"--presence-penalty: nan is out of range"}},
                      BadArgs{kRun + "--presence-penalty -1", {"--presence-penalty: -1 is out of range [0, "}},
                      BadArgs{kRun + "--frequency-penalty inf", {"--frequency-penalty: inf is out of range"}},
                      BadArgs{kRun + "--frequency-penalty -0.5", {"--frequency-penalty: -0.5 is out of range"}}));

TEST(Cli, TokenizeFileThatIsADirectoryIsAnError) {
  TempDir dir;
  const RunResult r = run_command(
      tessera_cmd("tokenize -m '" + golden("models/tiny-q8_0.gguf") + "' --file '" + dir.file("") + "'"), true);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("is a directory"), std::string::npos) << r.output;
}

TEST(Cli, KernelsHelp) {
  const RunResult r = run_command(tessera_cmd("kernels --help"), true);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("usage: tessera kernels list"), std::string::npos) << r.output;
}

// -n N generates exactly N tokens and the summary line says so (it used to print N - 1: the first
// token, sampled from the prompt's logits, was left out of the count).
TEST(Cli, RunGeneratesExactlyNTokens) {
  for (int n : {1, 32}) {
    const RunResult r = run_command(tessera_cmd("run -m '" + golden("models/tiny-q8_0.gguf") + "' -p hi -n " +
                                                std::to_string(n) + " --ignore-eos --seed 1 -t 1"),
                                    true);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.output, m, std::regex(R"(generation: (\d+) tokens)"))) << r.output;
    EXPECT_EQ(std::stoi(m[1]), n) << r.output;
    EXPECT_NE(r.output.find("finish: length"), std::string::npos) << r.output;
  }
}

}  // namespace
}  // namespace tessera::test
