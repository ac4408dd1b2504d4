// The HIP backend without a GPU: the embedded code objects' static resources against the committed
// budget (kernels/hip/resource_budget.txt: every kernel on every architecture, no scratch, no spills),
// the `hip` backend's message where there is no ROCm runtime, and what the emulator counts for one
// decoded token of the tiny qwen3moe model (launches per layer, global-memory bytes against the
// model's active bytes per token).
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/backend/hip/hip_resources.h"
#include "engine/context.h"
#include "engine/model/model.h"
#include "kernels/hip/emu/hip_emu.h"

namespace fs = std::filesystem;
using namespace tessera;
using namespace tessera::engine;

namespace {

struct Budget {
  int vgprs, sgprs, lds;
};

std::map<std::string, Budget> read_budget() {
  std::map<std::string, Budget> b;
  std::ifstream in(fs::path(TESSERA_SOURCE_DIR) / "kernels/hip/resource_budget.txt");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string name;
    Budget x{};
    if (ls >> name >> x.vgprs >> x.sgprs >> x.lds) b[name] = x;
  }
  return b;
}

TEST(ResourceBudget, EveryKernelOnEveryArchitectureWithinBudget) {
  const auto rs = hipdev::kernel_resources();
  if (rs.empty()) GTEST_SKIP() << "this build has no HIP code objects (no clang that targets amdgcn)";
  const auto budget = read_budget();
  ASSERT_FALSE(budget.empty()) << "kernels/hip/resource_budget.txt is missing or empty";
  std::map<std::string, std::set<std::string>> archs;
  for (const auto& r : rs) {
    archs[r.kernel].insert(r.arch);
    const std::string what = r.kernel + " on " + r.arch;
    EXPECT_EQ(r.scratch, 0) << what << ": scratch memory";
    EXPECT_EQ(r.vgpr_spill, 0) << what << ": VGPR spills";
    EXPECT_EQ(r.sgpr_spill, 0) << what << ": SGPR spills";
    EXPECT_FALSE(r.dynamic_stack) << what << ": dynamic stack";
    const auto it = budget.find(r.kernel);
    if (it == budget.end()) {
      ADD_FAILURE() << r.kernel << " has no line in kernels/hip/resource_budget.txt";
      continue;
    }
    EXPECT_LE(r.vgprs, it->second.vgprs) << what << ": VGPRs over budget";
    EXPECT_LE(r.sgprs, it->second.sgprs) << what << ": SGPRs over budget";
    EXPECT_LE(r.lds, it->second.lds) << what << ": LDS over budget";
  }
  for (const auto& [name, _] : budget) EXPECT_TRUE(archs.count(name)) << "budget line for a kernel that does not exist: " << name;
  for (const auto& [name, a] : archs)
    EXPECT_EQ(a, (std::set<std::string>{"gfx1100", "gfx1151", "gfx1200", "gfx1201"})) << name;
}

// Where ROCm is absent (always, in CI) the message says what is missing and what to use instead.
TEST(Runtime, AbsentRuntimeSaysWhy) {
  try {
    make_backend("hip");
    GTEST_SKIP() << "a ROCm runtime and a device are present here";
  } catch (const std::exception& e) {
    const std::string m = e.what();
    if (m.find("libamdhip64.so") == std::string::npos && m.find("no GPU") == std::string::npos)
      FAIL() << "unexpected message: " << m;
    if (m.find("libamdhip64.so") != std::string::npos) {
      EXPECT_NE(m.find("install ROCm"), std::string::npos) << m;
      EXPECT_NE(m.find("--backend hip-emu"), std::string::npos) << m;
    }
  }
  EXPECT_NE(backend_names().find("hip-emu"), std::string::npos);
}

// Bytes of weights one decoded token reads: every tensor, except only the used share of the expert
// stacks and one row of the embedding table (all of it when it is also the output matrix).
double active_bytes(const Model& m) {
  const auto& c = m.config();
  bool tied = true;
  for (const auto& t : m.file().tensors()) tied &= t.name != "output.weight";
  double b = 0;
  for (const auto& t : m.file().tensors()) {
    if (t.name.find("_exps") != std::string::npos) b += static_cast<double>(t.nbytes) * c.n_expert_used / c.n_expert;
    else if (t.name == "token_embd.weight" && !tied) b += static_cast<double>(t.row_bytes());
    else b += static_cast<double>(t.nbytes);
  }
  return b;
}

TEST(EmulatorCounts, DecodeStepOfTinyQwen3Moe) {
  const fs::path path = fs::path(TESSERA_GOLDEN_DIR) / "models" / "tiny-q4_k_m.gguf";
  LoadOptions lo;
  lo.print_plan = false;
  lo.backend = "hip-emu";
  auto model = Model::load(path.string(), lo);
  ContextOptions co;
  co.n_ctx = 256;
  co.print_plan = false;
  Context ctx(model, co);
  const std::vector<int32_t> prompt = {970, 11, 1879, 0, 358, 1079};  // ids of its 4122-token vocabulary
  ctx.eval(prompt);
  const int32_t next = 13;
  hip_emu::reset_stats();
  ctx.eval(std::span<const int32_t>(&next, 1));
  const hip_emu::Stats s = hip_emu::stats();
  const int n_layer = model->config().n_layer;
  const double active = active_bytes(*model);
  std::printf("tiny-q4_k_m (qwen3moe, %d layers) one decoded token on hip-emu: %llu launches (%.1f per layer incl. "
              "the step's own), %.0f KiB read + %.0f KiB written; active weights %.0f KiB; read / active %.2f\n",
              n_layer, static_cast<unsigned long long>(s.launches), static_cast<double>(s.launches) / n_layer,
              static_cast<double>(s.bytes_read) / 1024, static_cast<double>(s.bytes_written) / 1024, active / 1024,
              static_cast<double>(s.bytes_read) / active);
  // The targets: <= 8 launches per layer (here counting the step's own: embed and output
  // head) with the fused decode kernels (kernels/hip/fused.hip: 7 per layer), <= 1.15x the active bytes.
  EXPECT_GT(s.launches, 0u);
  EXPECT_LE(static_cast<double>(s.launches) / n_layer, 8.0);
  EXPECT_GE(static_cast<double>(s.bytes_read), 0.9 * active);  // every active weight is read
  EXPECT_LE(static_cast<double>(s.bytes_read), 1.15 * active);
}

// The fused decode kernels (kernels/hip/fused.hip) against the one-launch-per-op path of the same
// stream (TESSERA_HIP_UNFUSED=1): the logits of a prompt and of decoded tokens, bit for bit (the fused
// kernels round and sum in the unfused kernels' order). Models: qwen3moe (QK-norm, router, MoE),
// qwen2 (biases, no QK-norm), qwen3 bf16 (float weights).
std::vector<float> eval_logits(const std::string& file, bool fused) {
  LoadOptions lo;
  lo.print_plan = false;
  lo.backend = "hip-emu";
  auto model = Model::load((fs::path(TESSERA_GOLDEN_DIR) / "models" / file).string(), lo);
  ContextOptions co;
  co.n_ctx = 256;
  co.print_plan = false;
  if (!fused) setenv("TESSERA_HIP_UNFUSED", "1", 1);
  Context ctx(model, co);
  unsetenv("TESSERA_HIP_UNFUSED");
  std::vector<float> out;
  const std::vector<int32_t> prompt = {970, 11, 1879, 0, 358};
  auto l = ctx.eval(prompt);
  out.insert(out.end(), l.begin(), l.end());
  for (int32_t id : {13, 42, 7}) {
    auto r = ctx.eval(std::span<const int32_t>(&id, 1));
    out.insert(out.end(), r.begin(), r.end());
  }
  return out;
}

class EmulatorFusion : public ::testing::TestWithParam<const char*> {};
TEST_P(EmulatorFusion, DecodeLogitsEqualUnfused) {
  hip_emu::reset_stats();
  const std::vector<float> fused = eval_logits(GetParam(), true);
  const uint64_t fused_launches = hip_emu::stats().launches;
  hip_emu::reset_stats();
  const std::vector<float> plain = eval_logits(GetParam(), false);
  const uint64_t plain_launches = hip_emu::stats().launches;
  std::printf("%s: prompt + 3 tokens in %llu launches fused, %llu unfused\n", GetParam(),
              static_cast<unsigned long long>(fused_launches), static_cast<unsigned long long>(plain_launches));
  EXPECT_LT(fused_launches, plain_launches);
  ASSERT_EQ(fused.size(), plain.size());
  size_t diff = 0, first = fused.size();
  for (size_t i = 0; i < fused.size(); ++i)
    if (std::memcmp(&fused[i], &plain[i], sizeof(float)) != 0) {
      ++diff;
      first = std::min(first, i);
    }
  EXPECT_EQ(diff, 0u) << "logits differ; first at " << first << ": " << (first < fused.size() ? fused[first] : 0.0f) << " vs "
                      << (first < fused.size() ? plain[first] : 0.0f);
}
INSTANTIATE_TEST_SUITE_P(Models, EmulatorFusion,
                         ::testing::Values("tiny-q4_k_m.gguf", "tiny-qwen2-q4_k_m.gguf", "tiny-qwen3-bf16.gguf"),
                         [](const auto& i) {
                           std::string n = i.param;
                           n = n.substr(0, n.find('.'));
                           for (char& ch : n) ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                           return n;
                         });

}  // namespace
