// Real-model fidelity: Tessera's logits on real model files against float64 logits of the same weights
// (../shared/tools/refmodel.py: no activation quantization, f16 KV). Cases (tests/data/fidelity/<case>/,
// whose README.md says how they were made):
// - qwen2.5-coder-0.5b-fim128 (issue 9): Qwen2.5-Coder-0.5B-Instruct Q4_K_M, a 128-token FIM prompt as
//   one batch, 8 of its rows stored.
// - smollm2-135m-code_python (issue 15): SmolLM2-135M-Instruct Q4_1 (llama), the golden `code_python`
//   case as the goldens are made: the 97-token prompt as one batch, then its 16 greedy tokens fed one at a
//   time. All 113 rows are compared: the oracle's output-head input (its final hidden state after the
//   output norm, f32) is stored, and the test forms the oracle's logits from it and the file's own output
//   matrix (dequantized, in double), which is all the oracle does after that point.
// The model files are not in the repository: setup puts them in models/ (TESSERA_REAL_MODEL names the
// Qwen file instead); a case is skipped without its model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "engine/context.h"
#include "engine/model/model.h"
#include "engine/sample/sampler.h"
#include "gguf/codecs.h"
#include "gguf/half.h"

namespace fs = std::filesystem;
using namespace tessera;
using namespace tessera::engine;

namespace {

const fs::path kData = fs::path(TESSERA_SOURCE_DIR) / "tests" / "data" / "fidelity";

fs::path model_path(const std::string& file) {
  if (const char* p = std::getenv("TESSERA_REAL_MODEL"); p && file.starts_with("qwen2.5")) return p;
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

// Per case: the row NMSE median, p98 and worst, and the top-1 agreement (share of rows) allowed.
struct Thresholds {
  double median_max, p98_max, worst_max, top1_min;
};
Thresholds thresholds_of(const std::string& name, const std::string& backend) {
  // Qwen2.5 (8 rows): llama.cpp's CPU backend (flash attention on / off: median 5.3e-4 / 4.2e-4, worst
  // 1.8e-3 / 3.0e-3); Tessera with Q8_0 activations for ffn_down (one scale per 32 values): median
  // 3.3e-4, worst 1.0e-3 (avx512) / 8.4e-4 (avx2 level); scalar level 5.0e-4 / 9.1e-4 on these 8 rows,
  // plus headroom for accumulation-order noise (README.md). p98 of 8 rows is the worst.
  if (name == "qwen2.5-coder-0.5b-fim128") return {6.5e-4, 1.6e-3, 1.6e-3, 7.0 / 8.0};
  // SmolLM2 (issue 15: at least as close as llama.cpp). cpu: llama.cpp's own figures against this oracle
  // (the case's README.md); its Q4_1 kernels take f32 activations and land ~10x closer. ref computes
  // llama.cpp's int8 arithmetic (Q8_1 activations): one draw of the same noise as llama.cpp, so it gets
  // llama.cpp's level plus the spread measured across such draws (median 3.9e-4 to 4.9e-4).
  const bool exact_acts = backend == "cpu";
  if (name == "smollm2-135m-code_python")
    return exact_acts ? Thresholds{3.95e-4, 7.1e-3, 8.8e-3, 101.0 / 113} : Thresholds{6e-4, 7.1e-3, 2e-2, 0.88};
  if (name == "smollm2-135m-chat")
    return exact_acts ? Thresholds{1.18e-3, 2.2e-2, 8.2e-2, 0.96} : Thresholds{2e-3, 3e-2, 1e-1, 0.88};
  ADD_FAILURE() << "no thresholds for fidelity case " << name;
  return {0, 0, 0, 0};
}

// The oracle's logits for a case: stored rows (`logits_file`, f16, `rows`), or every row formed from the
// stored final hidden states (`hidden_file`, f32 [rows][n_embd]) and the model's output matrix in double.
// Returns the rows compared and fills ref [rows.size()][n_vocab].
std::vector<int64_t> oracle_rows(const nlohmann::json& c, const fs::path& dir, const Model& m, size_t n_rows,
                                 std::vector<float>& ref) {
  const int64_t V = m.config().n_vocab, E = m.config().n_embd;
  if (c.contains("logits_file")) {
    const auto rows = c["rows"].get<std::vector<int64_t>>();
    ref.resize(rows.size() * static_cast<size_t>(V));
    std::ifstream f(dir / c["logits_file"].get<std::string>(), std::ios::binary);
    std::vector<uint16_t> h(ref.size());
    f.read(reinterpret_cast<char*>(h.data()), static_cast<std::streamsize>(h.size() * 2));
    EXPECT_EQ(static_cast<size_t>(f.gcount()), h.size() * 2);
    for (size_t i = 0; i < h.size(); ++i) ref[i] = fp16_to_fp32(h[i]);
    return rows;
  }
  EXPECT_EQ(c["n_embd"].get<int64_t>(), E);
  std::vector<float> hid(n_rows * static_cast<size_t>(E));
  {
    std::ifstream f(dir / c["hidden_file"].get<std::string>(), std::ios::binary);
    f.read(reinterpret_cast<char*>(hid.data()), static_cast<std::streamsize>(hid.size() * 4));
    EXPECT_EQ(static_cast<size_t>(f.gcount()), hid.size() * 4);
  }
  const gguf::File& file = m.file();
  const gguf::TensorInfo* head = file.find_tensor("output.weight");
  if (!head) head = file.find_tensor("token_embd.weight");  // tied
  ref.assign(n_rows * static_cast<size_t>(V), 0.0f);
  auto rows_of = [&](int64_t v0, int64_t v1) {
    std::vector<float> w(static_cast<size_t>(E));
    for (int64_t v = v0; v < v1; ++v) {
      dequantize_row(head->type, head->data + static_cast<size_t>(v) * head->row_bytes(), w.data(), E);
      for (size_t r = 0; r < n_rows; ++r) {
        const float* h = hid.data() + r * static_cast<size_t>(E);
        double acc = 0;
        for (int64_t i = 0; i < E; ++i) acc += static_cast<double>(h[i]) * w[i];
        ref[r * static_cast<size_t>(V) + static_cast<size_t>(v)] = static_cast<float>(acc);
      }
    }
  };
  std::thread other(rows_of, 0, V / 2);  // two halves of the vocabulary
  rows_of(V / 2, V);
  other.join();
  std::vector<int64_t> rows(n_rows);
  for (size_t r = 0; r < n_rows; ++r) rows[r] = static_cast<int64_t>(r);
  return rows;
}

// (case, backend)
class RealModelFidelity : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(RealModelFidelity, MatchesFloat64Oracle) {
  const std::string name = std::get<0>(GetParam());
  const std::string backend = std::get<1>(GetParam());
  const fs::path dir = kData / name;
  const Thresholds th = thresholds_of(name, backend);
  std::ifstream jf(dir / "case.json");
  ASSERT_TRUE(jf.good()) << dir;
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
  const auto feed = c.value("feed_tokens", std::vector<int32_t>{});

  ContextOptions co;
  co.n_ctx = 256;
  co.n_threads = 2;
  co.print_plan = false;
  Context ctx(model, co);
  const auto first = ctx.eval(prompt, true);  // the prompt as one batch, every row
  std::vector<float> got(first.begin(), first.end());
  for (int32_t id : feed) {  // then fed tokens one at a time (teacher forcing)
    const auto r = ctx.eval(std::span<const int32_t>(&id, 1));
    got.insert(got.end(), r.begin(), r.end());
  }
  ASSERT_EQ(got.size(), (prompt.size() + feed.size()) * static_cast<size_t>(V));

  std::vector<float> ref;
  const std::vector<int64_t> rows = oracle_rows(c, dir, *model, prompt.size() + feed.size(), ref);
  ASSERT_FALSE(rows.empty());
  std::vector<std::pair<double, int64_t>> err;
  int top1 = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const float* a = ref.data() + i * static_cast<size_t>(V);
    const float* b = got.data() + static_cast<size_t>(rows[i]) * static_cast<size_t>(V);
    err.emplace_back(nmse(a, b, V), rows[i]);
    top1 += argmax({a, static_cast<size_t>(V)}) == argmax({b, static_cast<size_t>(V)});
  }
  std::sort(err.begin(), err.end());
  const size_t n = err.size();
  const double median = n % 2 ? err[n / 2].first : 0.5 * (err[n / 2 - 1].first + err[n / 2].first);
  const double p98 = err[std::min(n - 1, static_cast<size_t>(0.98 * static_cast<double>(n - 1) + 0.5))].first;
  const double top1_share = static_cast<double>(top1) / static_cast<double>(n);
  std::printf("%-4s %s: %zu rows  median NMSE %.2e (<= %.1e)  p98 %.2e (<= %.1e)  worst %.2e (<= %.1e, row %lld)  "
              "top-1 %d/%zu\n",
              backend.c_str(), name.c_str(), n, median, th.median_max, p98, th.p98_max, err.back().first, th.worst_max,
              static_cast<long long>(err.back().second), top1, n);
  EXPECT_LE(median, th.median_max);
  EXPECT_LE(p98, th.p98_max);
  EXPECT_LE(err.back().first, th.worst_max);
  EXPECT_GE(top1_share, th.top1_min);
}

// Every case on cpu; SmolLM2 on ref too (~15 s). Qwen2.5 on ref needs ~80 s (it meets the same
// thresholds, its README.md).
std::vector<std::tuple<std::string, std::string>> fidelity_params() {
  std::vector<std::tuple<std::string, std::string>> v;
  for (const auto& e : fs::directory_iterator(kData))
    if (fs::exists(e.path() / "case.json")) {
      const std::string name = e.path().filename().string();
      v.emplace_back(name, "cpu");
      if (name.starts_with("smollm2")) v.emplace_back(name, "ref");
    }
  std::sort(v.begin(), v.end());
  return v;
}

INSTANTIATE_TEST_SUITE_P(Fidelity, RealModelFidelity, ::testing::ValuesIn(fidelity_params()),
                         [](const ::testing::TestParamInfo<std::tuple<std::string, std::string>>& info) {
                           std::string s = std::get<0>(info.param) + "_" + std::get<1>(info.param);
                           for (char& ch : s)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return s;
                         });

}  // namespace
