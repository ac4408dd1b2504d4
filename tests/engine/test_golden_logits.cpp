// Conformance against llama.cpp's goldens: for every model in tests/golden/logits and every case,
// the prompt as one batch (all logits), then the golden greedy tokens fed one at a time (teacher
// forcing); every row is compared with the f16 golden row (per-row NMSE, top-1 agreement). Backends:
// cpu and ref; built again as test_golden_logits_vulkan with TESSERA_TEST_BACKEND="vulkan" and as
// test_golden_logits_hip_emu with "hip-emu".
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "engine/context.h"
#include "engine/model/model.h"
#include "engine/sample/sampler.h"
#include "gguf/half.h"

namespace fs = std::filesystem;
using namespace tessera;
using namespace tessera::engine;

namespace {

#ifdef TESSERA_TEST_BACKEND
const std::vector<std::string> kBackends = {TESSERA_TEST_BACKEND};
#else
const std::vector<std::string> kBackends = {"cpu", "ref"};
#endif

const fs::path kGolden = TESSERA_GOLDEN_DIR;
const fs::path kSource = TESSERA_SOURCE_DIR;

// Real models are not stored in the golden folder: scripts/fetch_models.sh (run by setup) puts them in
// the repository's models/ folder. Golden folder name -> file there.
const std::map<std::string, std::string> kRealModels = {
    {"smollm2-135m-q4_1", "smollm2-135m-instruct-q4_1.gguf"},
};

// The model file for a golden folder: tests/golden/models/<name>.gguf for the random-weight fixtures,
// models/<file> for a real model; empty when there is none.
fs::path model_path(const std::string& name) {
  const fs::path tiny = kGolden / "models" / (name + ".gguf");
  if (fs::exists(tiny)) return tiny;
  if (auto it = kRealModels.find(name); it != kRealModels.end()) return kSource / "models" / it->second;
  return {};
}

std::vector<std::string> golden_models() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(kGolden / "logits"))
    if (e.is_directory() && fs::exists(e.path() / "cases.json")) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// What a case's rows must meet. Random-weight fixtures (issue 5): median row NMSE 1.3e-4 (MoE files),
// 2e-4 (dense Q4_K_M), 1e-4 (dense Q8_0 / BF16); worst 3e-3; 98% of rows within 6e-4; top-1 90%.
// The real SmolLM2-135M Q4_1 (issue 15) is noisier, and llama.cpp's goldens are one draw of the noise its
// Q8_1 activation rounding adds (the float64 oracle, ../shared/tools/refmodel.py, is the exact answer):
// - code_python: the bars (median 6e-4, p98 1e-2, worst 2e-2, top-1 88%). llama.cpp against itself
//   (batch vs one token at a time) reaches 1.6e-2, against the oracle 8.8e-3. Tessera's cpu backend, whose
//   Q4_1 kernels take f32 activations, is within 1e-3 of the oracle; it measures median 5.3e-4, p98 8.2e-3,
//   worst 1.25e-2 here; ref (llama.cpp's int8 arithmetic) 4.8e-4 / 8.8e-3 / 1.25e-2.
// - chat: llama.cpp is far from the exact answer (the oracle against these goldens: median 1.2e-3, p98
//   2.2e-2, worst 8.2e-2 on row 19); cpu, being near the oracle, measures the same (1.15e-3 / 2.1e-2 /
//   8.3e-2), ref 1.5e-3 / 1.1e-2 / 1.1e-2. Bars: median 2e-3, p98 3e-2, worst 1e-1, top-1 88%; the tight
//   check of this case is against the oracle (test_real_model_fidelity). A real fault costs far more
//   (NEOX pairs instead of NORM: median 0.41 on code_python).
struct Budget {
  double median, p98, worst, within_pct, top1_pct;  // within_pct: rows with NMSE <= 6e-4
};
Budget budget_of(const std::string& model, const std::string& case_name) {
  if (kRealModels.count(model)) {
    if (case_name == "chat") return {2e-3, 3e-2, 1e-1, 0.0, 88.0};
    return {6e-4, 1e-2, 2e-2, 0.0, 88.0};
  }
  const bool dense = model.find("qwen3-") != std::string::npos || model.find("qwen2-") != std::string::npos;
  const double median = !dense ? 1.3e-4 : model.find("q4_k_m") != std::string::npos ? 2e-4 : 1e-4;
  return {median, 3e-3, 3e-3, 98.0, 90.0};
}

std::vector<float> read_f16(const fs::path& p, size_t n) {
  std::ifstream f(p, std::ios::binary);
  std::vector<uint16_t> h(n);
  f.read(reinterpret_cast<char*>(h.data()), static_cast<std::streamsize>(n * 2));
  EXPECT_EQ(static_cast<size_t>(f.gcount()), n * 2) << p;
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = fp16_to_fp32(h[i]);
  return out;
}

double nmse(const float* ref, const float* got, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(got[i]) - ref[i];
    num += d * d;
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return den > 0 ? num / den : num;
}

// (golden model, backend): every backend meets the same thresholds.
class GoldenLogits : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(GoldenLogits, MatchesLlamaCpp) {
  const std::string name = std::get<0>(GetParam());
  const std::string backend = std::get<1>(GetParam());
  const fs::path path = model_path(name);
  if (path.empty()) FAIL() << name << ": no model file: neither tests/golden/models/" << name << ".gguf nor a real model";
  // A real model is skipped, by name and saying why, until setup has fetched it or while its
  // architecture is not supported yet; anything else that fails to load is a failure.
  if (!fs::exists(path))
    GTEST_SKIP() << name << ": model file missing: " << path.string()
                 << " (real model, fetched by scripts/setup.sh -> scripts/fetch_models.sh)";
  // The real model (135M parameters) takes minutes per case on the HIP emulator: skipped there by name
  // unless asked for.
  if (backend == "hip-emu" && kRealModels.count(name) && !std::getenv("TESSERA_HIP_EMU_REAL_MODELS"))
    GTEST_SKIP() << name << ": real model, too slow for CI on the HIP emulator (TESSERA_HIP_EMU_REAL_MODELS=1 runs it)";
  if (backend != "cpu" && backend != "ref") {
    try {
      make_backend(backend);
    } catch (const std::exception& e) {
      GTEST_SKIP() << backend << " backend unavailable: " << e.what();
    }
  }
  LoadOptions lo;
  lo.print_plan = false;
  lo.backend = backend;
  std::shared_ptr<Model> model;
  try {
    model = Model::load(path.string(), lo);
  } catch (const std::exception& e) {
    const std::string what = e.what();
    if (kRealModels.count(name) && what.find("architecture '") != std::string::npos &&
        what.find("' is not supported") != std::string::npos)
      GTEST_SKIP() << name << ": architecture not supported yet: " << what;
    throw;
  }
  ContextOptions co;
  co.n_ctx = 512;
  co.n_threads = 2;
  co.print_plan = false;
  Context ctx(model, co);
  const int64_t V = model->config().n_vocab;

  std::ifstream jf(kGolden / "logits" / name / "cases.json");
  const nlohmann::json cases = nlohmann::json::parse(jf);
  ASSERT_FALSE(cases.empty());
  for (const auto& c : cases) {
    const std::string cname = c["name"];
    const Budget budget = budget_of(name, cname);
    const auto prompt = c["prompt_tokens"].get<std::vector<int32_t>>();
    const auto greedy = c["greedy_tokens"].get<std::vector<int32_t>>();
    const size_t rows = c["logits_rows"].get<size_t>();
    ASSERT_EQ(c["n_vocab"].get<int64_t>(), V) << name << "/" << cname;
    ASSERT_EQ(rows, prompt.size() + greedy.size());
    const std::vector<float> ref = read_f16(kGolden / "logits" / name / c["logits_file"].get<std::string>(), rows * V);

    // Prompt as one batch, then teacher-forced greedy tokens one at a time.
    ctx.clear();
    std::vector<float> got;
    got.reserve(rows * V);
    auto l = ctx.eval(prompt, true);
    got.insert(got.end(), l.begin(), l.end());
    for (int32_t id : greedy) {
      auto r = ctx.eval(std::span<const int32_t>(&id, 1));
      got.insert(got.end(), r.begin(), r.end());
    }
    ASSERT_EQ(got.size(), rows * V);

    std::vector<std::pair<double, size_t>> err(rows);
    size_t top1 = 0, within = 0;
    for (size_t r = 0; r < rows; ++r) {
      const float* a = ref.data() + r * V;
      const float* b = got.data() + r * V;
      err[r] = {nmse(a, b, V), r};
      top1 += argmax({a, static_cast<size_t>(V)}) == argmax({b, static_cast<size_t>(V)});
      within += err[r].first <= 6e-4;
    }
    std::vector<double> sorted(rows);
    for (size_t r = 0; r < rows; ++r) sorted[r] = err[r].first;
    std::sort(sorted.begin(), sorted.end());
    const double median = rows % 2 ? sorted[rows / 2] : 0.5 * (sorted[rows / 2 - 1] + sorted[rows / 2]);
    const double p98 = sorted[std::min(rows - 1, static_cast<size_t>(0.98 * static_cast<double>(rows - 1) + 0.5))];
    const double worst = sorted.back();
    const double top1_pct = 100.0 * static_cast<double>(top1) / static_cast<double>(rows);
    const double within_pct = 100.0 * static_cast<double>(within) / static_cast<double>(rows);
    std::sort(err.begin(), err.end(), std::greater<>());
    std::printf("%-4s %-20s %-14s rows %3zu  median NMSE %.2e (<= %.1e)  p98 %.2e  max %.2e  <=6e-4 %5.1f%%  top-1 %5.1f%%  worst rows:",
                backend.c_str(), name.c_str(), cname.c_str(), rows, median, budget.median, p98, worst, within_pct, top1_pct);
    for (size_t i = 0; i < std::min<size_t>(3, rows); ++i) std::printf(" %zu:%.1e", err[i].second, err[i].first);
    std::printf("\n");
    EXPECT_LE(median, budget.median) << name << "/" << cname;
    EXPECT_LE(p98, budget.p98) << name << "/" << cname;
    EXPECT_LE(worst, budget.worst) << name << "/" << cname;
    EXPECT_GE(within_pct, budget.within_pct) << name << "/" << cname;
    EXPECT_GE(top1_pct, budget.top1_pct) << name << "/" << cname;
  }
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenLogits,
                         ::testing::Combine(::testing::ValuesIn(golden_models()), ::testing::ValuesIn(kBackends)),
                         [](const ::testing::TestParamInfo<std::tuple<std::string, std::string>>& info) {
                           std::string s = std::get<0>(info.param) + "_" + std::get<1>(info.param);
                           for (char& ch : s)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return s;
                         });

}  // namespace
