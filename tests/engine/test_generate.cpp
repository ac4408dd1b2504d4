// generate(): greedy output equals the argmax of teacher-forced logits, max_tokens ends with
// "length", a stop string ends with "stop" and is cut from the text, streamed pieces add up to the
// text and are valid UTF-8 even with stop strings that are not, and returning false from the
// callback cancels.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "engine/context.h"
#include "core/error.h"
#include "engine/generate.h"
#include "engine/model/model.h"
#include "tests/tokenizer/utf8_reference.h"

namespace fs = std::filesystem;
using namespace tessera::engine;

namespace {

std::shared_ptr<Model> tiny() {
  LoadOptions lo;
  lo.print_plan = false;
  static auto m = Model::load((fs::path(TESSERA_GOLDEN_DIR) / "models" / "tiny-q8_0.gguf").string(), lo);
  return m;
}

ContextOptions opts() {
  ContextOptions co;
  co.n_ctx = 256;
  co.print_plan = false;
  return co;
}

GenerateParams greedy(int n) {
  GenerateParams p;
  p.max_tokens = n;
  p.sampler.temperature = 0.0f;
  p.stop_at_eog = false;
  return p;
}

const std::vector<int32_t> kPrompt = {4112, 750, 282, 579, 263, 580, 66, 72, 1445, 982, 257, 4114, 198, 4113};

TEST(Generate, GreedyFollowsArgmax) {
  Context ctx(tiny(), opts());
  std::string streamed;
  auto r = generate(ctx, kPrompt, greedy(12), [&](std::string_view t, int32_t) {
    streamed += t;
    return true;
  });
  EXPECT_EQ(r.finish, FinishReason::Length);
  EXPECT_EQ(r.n_generated, 12);
  EXPECT_EQ(r.n_prompt, static_cast<int>(kPrompt.size()));
  ASSERT_EQ(r.tokens.size(), 12u);
  EXPECT_EQ(streamed, r.text);
  EXPECT_EQ(r.text, tiny()->tokenizer().decode(r.tokens));

  Context check(tiny(), opts());
  auto l = check.eval(kPrompt);
  for (int32_t id : r.tokens) {
    EXPECT_EQ(argmax(l), id);
    l = check.eval(std::span<const int32_t>(&id, 1));
  }
}

TEST(Generate, StopString) {
  Context ctx(tiny(), opts());
  auto full = generate(ctx, kPrompt, greedy(16));
  ASSERT_GE(full.text.size(), 8u);
  const std::string stop = full.text.substr(full.text.size() / 2, 3);
  const size_t at = full.text.find(stop);
  ctx.clear();
  GenerateParams p = greedy(16);
  p.stop = {"never-appears-xyz", stop};
  std::string streamed;
  auto r = generate(ctx, kPrompt, p, [&](std::string_view t, int32_t) {
    streamed += t;
    return true;
  });
  EXPECT_EQ(r.finish, FinishReason::Stop);
  EXPECT_EQ(r.stop_matched, stop);
  EXPECT_EQ(r.text, full.text.substr(0, at));
  EXPECT_EQ(streamed, r.text);  // held-back text never leaks the stop string
}

// Stop strings that begin with continuation bytes (only possible when they are not valid UTF-8, as
// `--stop` allows) must neither be held back nor cut in the middle of a character.
TEST(Generate, StopStringsNeverSplitACharacter) {
  GenerateParams p;
  p.max_tokens = 64;
  p.stop_at_eog = false;
  p.sampler.temperature = 1.0f;
  Context ctx(tiny(), opts());
  // The first seed whose stream has a piece ending in a multi-byte character: its continuation bytes.
  std::string tail;
  for (p.sampler.seed = 1; p.sampler.seed <= 50 && tail.empty(); ++p.sampler.seed) {
    ctx.clear();
    generate(ctx, kPrompt, p, [&](std::string_view t, int32_t) {
      size_t lead = t.size();
      while (lead > 0 && (static_cast<uint8_t>(t[lead - 1]) & 0xC0) == 0x80) --lead;
      if (tail.empty() && lead > 0 && lead < t.size()) tail = t.substr(lead);
      return true;
    });
  }
  ASSERT_FALSE(tail.empty()) << "no seed streams a piece ending in a multi-byte character";
  --p.sampler.seed;
  for (const std::string& stop : {tail + "\x01never", tail}) {  // held back as a prefix; matched
    ctx.clear();
    p.stop = {stop};
    std::string streamed;
    auto r = generate(ctx, kPrompt, p, [&](std::string_view t, int32_t) {
      EXPECT_TRUE(tessera::test::valid_utf8(t)) << "piece '" << t << "'";
      streamed += t;
      return true;
    });
    EXPECT_TRUE(tessera::test::valid_utf8(r.text));
    EXPECT_EQ(streamed, r.text);
  }
}

TEST(Generate, CancelAndContinue) {
  Context ctx(tiny(), opts());
  int calls = 0;
  auto r = generate(ctx, kPrompt, greedy(16), [&](std::string_view, int32_t) { return ++calls < 3; });
  EXPECT_EQ(r.finish, FinishReason::Cancelled);
  EXPECT_EQ(r.n_generated, 3);
  // The sequence holds the prompt and the fed tokens; a new request can clear and start over.
  EXPECT_EQ(ctx.n_past(), static_cast<int>(kPrompt.size()) + 2);
  ctx.clear();
  auto again = generate(ctx, kPrompt, greedy(4));
  EXPECT_EQ(again.n_generated, 4);
  EXPECT_THROW(generate(ctx, std::vector<int32_t>{}, greedy(4)), tessera::Error);
}

TEST(Generate, SeededSamplingIsReproducible) {
  GenerateParams p;
  p.max_tokens = 10;
  p.stop_at_eog = false;
  p.sampler.temperature = 1.0f;
  p.sampler.seed = 77;
  Context a(tiny(), opts()), b(tiny(), opts());
  EXPECT_EQ(generate(a, kPrompt, p).tokens, generate(b, kPrompt, p).tokens);
}

}  // namespace
