// `tessera run --backend vulkan --profile` on the tiny qwen3moe model (lavapipe): the report agrees
// with the run (steps and tokens), with itself (per-shader calls add up to the dispatches, every
// decode step issues the same dispatches, every layer as many) and with the file (the weight bytes
// decode reads per token are the model's active bytes, computed here from the tensors).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <regex>
#include <string>

#include "gguf/gguf.h"
#include "tests/tools/tool_test_util.h"

namespace tessera::test {
namespace {

// The dispatches of one qwen3moe layer per decoded token may not grow past this (the target was 8).
constexpr double kMaxDispatchesPerLayer = 7;

double num(const std::string& s, const std::string& re) {
  std::smatch m;
  if (!std::regex_search(s, m, std::regex(re))) {
    ADD_FAILURE() << "no match for /" << re << "/ in:\n" << s;
    return -1;
  }
  return std::stod(m[1].str());
}

// Active bytes per decoded token from the file itself: every tensor but the expert stacks, k of each
// stack's n_expert matrices, one embedding row instead of the table (the whole table again when the
// output head is tied to it).
double active_bytes(const std::string& path) {
  const gguf::File f = gguf::File::open(path);
  const double k = static_cast<double>(f.get_int("qwen3moe.expert_used_count"));
  const double e = static_cast<double>(f.get_int("qwen3moe.expert_count"));
  double n = 0;
  for (const gguf::TensorInfo& t : f.tensors()) {
    const std::string name = t.name;
    if (name == "token_embd.weight") n += static_cast<double>(t.row_bytes()) + (f.find_tensor("output.weight") ? 0 : t.nbytes);
    else if (name.find("_exps.") != std::string::npos) n += static_cast<double>(t.nbytes) * k / e;
    else n += static_cast<double>(t.nbytes);
  }
  return n;
}

TEST(VulkanProfile, ReportAgreesWithTheRunAndTheModel) {
#if !defined(TESSERA_HAVE_VULKAN_BACKEND)
  GTEST_SKIP() << "this build has no vulkan backend (no glslang / -DTESSERA_VULKAN=OFF)";
#else
  const std::string model = golden("models/tiny-q4_k_m.gguf");
  const int n_gen = 6;
  const RunResult r = run_command("bash '" TESSERA_SOURCE_DIR "/scripts/lavapipe.sh' " +
                                      tessera_cmd("run -m '" + model + "' --backend vulkan --profile -p 'The quick brown fox' -n " +
                                                  std::to_string(n_gen) + " --ignore-eos"),
                                  true);
  if (r.exit_code == 77) GTEST_SKIP() << "no lavapipe sysroot (scripts/setup_lavapipe.sh)";
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string& out = r.output;
  const double prompt = num(out, R"(prompt: (\d+) tokens)");
  const double decoded = num(out, R"((\d+) decoded after the first)");
  EXPECT_EQ(decoded, n_gen - 1);
  EXPECT_NE(out.find("timestamps: 64 valid bits"), std::string::npos) << out;  // lavapipe's queue has them

  // the decode section: steps of one token, one per decoded token
  const size_t d0 = out.find("decode (steps of one token)"), b0 = out.find("batches:");
  ASSERT_NE(d0, std::string::npos) << out;
  ASSERT_NE(b0, std::string::npos) << out;
  const std::string dec = out.substr(d0, b0 - d0), bat = out.substr(b0);
  EXPECT_EQ(num(dec, R"(: (\d+) steps)"), decoded);
  EXPECT_EQ(num(dec, R"(, (\d+) tokens)"), decoded);
  EXPECT_EQ(num(bat, R"(: (\d+) steps)"), 1);
  EXPECT_EQ(num(bat, R"(, (\d+) tokens)"), prompt);
  const double dispatches = num(dec, R"((\d+) dispatches,)");
  EXPECT_GT(num(dec, R"(dispatches, ([\d.]+) ms on the device)"), 0);

  // dispatches per token = per layer x layers + outside, every layer the same
  const double per_token = num(dec, R"(dispatches per token: ([\d.]+))");
  const double per_layer = num(dec, R"(= ([\d.]+) per layer)");
  const double layers = num(dec, R"(x (\d+) layers)");
  const double outside = num(dec, R"(\+ ([\d.]+) outside the layers)");
  EXPECT_EQ(layers, 2);  // the tiny model's
  EXPECT_DOUBLE_EQ(per_token * decoded, dispatches);
  EXPECT_NEAR(per_layer * layers + outside, per_token, 1e-9);
  EXPECT_EQ(num(dec, R"(layers ([\d.]+)\.\.)"), per_layer);
  EXPECT_EQ(num(dec, R"(\.\.([\d.]+)\))"), per_layer);
  EXPECT_EQ(per_layer, static_cast<int>(per_layer)) << "a decode step issues whole dispatches per layer";
  EXPECT_LE(per_layer, kMaxDispatchesPerLayer);
  std::printf("decode: %.0f dispatches per layer per token, %.0f outside the layers\n", per_layer, outside);

  // the shader table: calls add up to the dispatches, each a whole number per step
  const std::regex row(R"(tessera:     (\w+) +(\d+) +([\d.]+) +([\d.]+) +([\d.]+) +([\d.]+)% +([\d.]+))");
  const size_t table_end = dec.size();
  double calls = 0, share = 0;
  for (auto it = std::sregex_iterator(dec.begin(), dec.begin() + static_cast<std::ptrdiff_t>(table_end), row);
       it != std::sregex_iterator(); ++it) {
    const double c = std::stod((*it)[2].str());
    calls += c;
    share += std::stod((*it)[6].str());
    EXPECT_EQ(std::fmod(c, decoded), 0) << (*it)[1].str() << ": " << c << " calls in " << decoded << " steps";
  }
  EXPECT_EQ(calls, dispatches);
  EXPECT_NEAR(share, 100, 1);

  // weights read per decoded token are exactly the active bytes (each read once); all bytes a little more
  const double active_mib = active_bytes(model) / (1 << 20);
  EXPECT_NEAR(num(dec, R"(active bytes \(([\d.]+) MiB\))"), active_mib, 2e-3);
  EXPECT_NEAR(num(dec, R"(weights [\d.]+ MiB = ([\d.]+)x)"), 1.0, 1e-3);
  const double ratio = num(dec, R"(per token: [\d.]+ MiB = ([\d.]+)x)");
  EXPECT_GT(ratio, 1.0);
  std::printf("decode: bytes read per token %.3fx the active bytes (%.3f MiB)\n", ratio, active_mib);
#endif
}

}  // namespace
}  // namespace tessera::test
