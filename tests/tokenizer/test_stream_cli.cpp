// `tessera run` streams valid UTF-8 to stdout: sampled output of the tiny model (temperature 1)
// often ends a token inside a character or picks a byte token that breaks one; seed 1 used to
// print D0 BE D0 22, seeds 4 and 5 lone continuation bytes.
#include <gtest/gtest.h>

#include <string>

#include "tests/tokenizer/utf8_reference.h"
#include "tests/tools/tool_test_util.h"

namespace tessera::test {
namespace {

TEST(RunCli, SampledOutputIsValidUtf8) {
  for (int seed = 1; seed <= 8; ++seed) {
    const RunResult r = run_command(tessera_cmd("run -m '" + golden("models/tiny-q8_0.gguf") +
                                                "' -p hi -n 64 --temp 1 -t 1 --seed " + std::to_string(seed)));
    ASSERT_EQ(r.exit_code, 0) << "seed " << seed;
    EXPECT_FALSE(r.output.empty()) << "seed " << seed;
    EXPECT_TRUE(valid_utf8(r.output)) << "seed " << seed << ": " << r.output;
  }
}

}  // namespace
}  // namespace tessera::test
