// Real-model fidelity (issue 9): Tessera's logits on the real Qwen2.5-Coder-0.5B-Instruct Q4_K_M file
// against float64 logits of the same weights (../shared/tools/refmodel.py: no activation quantization,
// f16 KV), for a 128-token FIM prompt evaluated as one batch. Only 8 rows of the oracle are stored
// (tests/data/fidelity/<case>/README.md says how they were made). The model file is not in the
// repository: setup puts it in models/ (or TESSERA_REAL_MODEL names it); the test is skipped without it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
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

const fs::path kCase = fs::path(TESSERA_SOURCE_DIR) / "tests" / "data" / "fidelity" / "qwen2.5-coder-0.5b-fim128";

fs::path model_path(const std::string& file) {
  if (const char* p = std::getenv("TESSERA_REAL_MODEL")) return p;
  return fs::path(TESSERA_SOURCE_DIR) / "models" / file;
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

// Thresholds: llama.cpp's CPU backend (flash attention on / off: median 5.3e-4 / 4.2e-4, worst 1.8e-3 /
// 3.0e-3) and Tessera (cpu at avx512 and avx2 levels, ref: median 4.5e-4 to 7.3e-4, worst 2.2e-3 to
// 2.3e-3) measured on these 8 rows, plus headroom for the noise of activation quantization (README.md).
constexpr double kMedianMax = 1e-3;
constexpr double kWorstMax = 3.5e-3;
constexpr int kTop1Min = 7;  // of 8 rows

class RealModelFidelity : public ::testing::TestWithParam<std::string> {};

TEST_P(RealModelFidelity, MatchesFloat64Oracle) {
  const std::string backend = GetParam();
  std::ifstream jf(kCase / "case.json");
  ASSERT_TRUE(jf.good()) << kCase;
  const nlohmann::json c = nlohmann::json::parse(jf);
  const fs::path path = model_path(c["model"].get<std::string>());
  if (!fs::exists(path)) GTEST_SKIP() << path << ": real model not present (setup fetches it; or set TESSERA_REAL_MODEL)";

  LoadOptions lo;
  lo.print_plan = false;
  lo.backend = backend;
  auto model = Model::load(path.string(), lo);
  const int64_t V = model->config().n_vocab;
  ASSERT_EQ(c["n_vocab"].get<int64_t>(), V);
  const auto prompt = c["prompt_tokens"].get<std::vector<int32_t>>();
  const auto rows = c["rows"].get<std::vector<int64_t>>();

  // The oracle's rows, stored as f16.
  std::vector<float> ref(rows.size() * static_cast<size_t>(V));
  {
    std::ifstream f(kCase / c["logits_file"].get<std::string>(), std::ios::binary);
    std::vector<uint16_t> h(ref.size());
    f.read(reinterpret_cast<char*>(h.data()), static_cast<std::streamsize>(h.size() * 2));
    ASSERT_EQ(static_cast<size_t>(f.gcount()), h.size() * 2);
    for (size_t i = 0; i < h.size(); ++i) ref[i] = fp16_to_fp32(h[i]);
  }

  ContextOptions co;
  co.n_ctx = 256;
  co.n_threads = 2;
  co.print_plan = false;
  Context ctx(model, co);
  const auto got = ctx.eval(prompt, true);  // the prompt as one batch, every row
  ASSERT_EQ(got.size(), prompt.size() * static_cast<size_t>(V));

  std::vector<double> err;
  int top1 = 0;
  std::printf("%-4s rows:", backend.c_str());
  for (size_t i = 0; i < rows.size(); ++i) {
    const float* a = ref.data() + i * static_cast<size_t>(V);
    const float* b = got.data() + static_cast<size_t>(rows[i]) * static_cast<size_t>(V);
    err.push_back(nmse(a, b, V));
    const bool same = argmax({a, static_cast<size_t>(V)}) == argmax({b, static_cast<size_t>(V)});
    top1 += same;
    std::printf(" %lld:%.2e%s", static_cast<long long>(rows[i]), err.back(), same ? "" : "(top-1 differs)");
  }
  std::vector<double> sorted = err;
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  const double median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
  std::printf("\n%-4s median NMSE %.2e (<= %.1e)  worst %.2e (<= %.1e)  top-1 %d/%zu\n", backend.c_str(), median,
              kMedianMax, sorted.back(), kWorstMax, top1, n);
  EXPECT_LE(median, kMedianMax);
  EXPECT_LE(sorted.back(), kWorstMax);
  EXPECT_GE(top1, kTop1Min);
}

// cpu only: the ref backend needs ~80 s for this prompt (it meets the same thresholds, README.md).
INSTANTIATE_TEST_SUITE_P(Fidelity, RealModelFidelity, ::testing::Values("cpu"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
