// Tests for `tessera mkmodel`: the tensor plans of the 48-layer qwen3-30b-a3b Q4_K_M / IQ4_NL files
// against the reference's type rules, the tiny presets against the golden files' layouts, and
// generated files (load in our reader and in Python's gguf, deterministic for a seed).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <vector>

#include "gguf/codecs.h"
#include "gguf/gguf.h"
#include "tests/tools/tool_test_util.h"

namespace tessera::test {
namespace {

struct PlanRow {
  std::string type;
  std::vector<int64_t> ne;
};

// Parses `mkmodel --dry-run` output: "name type d0 x d1 [x d2]" per tensor, '#' lines are comments.
std::vector<std::pair<std::string, PlanRow>> dry_run(const std::string& args) {
  RunResult r = run_command(tessera_cmd("mkmodel --dry-run " + args));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::vector<std::pair<std::string, PlanRow>> rows;
  std::istringstream in(r.output);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string name, type, tok;
    ls >> name >> type;
    PlanRow row{type, {}};
    while (ls >> tok)
      if (tok != "x") row.ne.push_back(std::stoll(tok));
    rows.push_back({name, row});
  }
  return rows;
}

int layer_of(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  return std::stoi(name.substr(4, name.find('.', 4) - 4));
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The reference, "Which types a file holds", typical Q4_K_M with n layers.
std::string expected_q4_k_m(const std::string& name, int n) {
  if (has(name, "norm.weight") || has(name, "ffn_gate_inp")) return "f32";
  if (name == "output.weight") return "q6_K";
  const int i = layer_of(name);
  if (has(name, "attn_v.weight") || has(name, "ffn_down_exps")) {
    const bool more = i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
    return more ? "q6_K" : "q4_K";
  }
  return "q4_K";
}

// Typical IQ4_NL: output Q6_K, attn_v Q5_K, ffn_down in the first n/8 layers Q5_K, the rest IQ4_NL.
std::string expected_iq4_nl(const std::string& name, int n) {
  if (has(name, "norm.weight") || has(name, "ffn_gate_inp")) return "f32";
  if (name == "output.weight") return "q6_K";
  if (has(name, "attn_v.weight")) return "q5_K";
  if (has(name, "ffn_down_exps") && layer_of(name) < n / 8) return "q5_K";
  return "iq4_nl";
}

const std::string kVocab = golden("models/vocab-qwen3.gguf");

void check_30b_plan(const std::string& type, std::string (*expected)(const std::string&, int)) {
  auto plan = dry_run("--preset qwen3-30b-a3b --type " + type + " --tokenizer-from '" + kVocab + "'");
  ASSERT_EQ(plan.size(), 3u + 48u * 12u);  // embd, output_norm, output + 12 per layer
  std::map<std::string, PlanRow> by_name(plan.begin(), plan.end());
  ASSERT_EQ(by_name.size(), plan.size()) << "duplicate tensor names";
  for (const auto& [name, row] : plan) EXPECT_EQ(row.type, expected(name, 48)) << name;
  // Exact Qwen3-30B-A3B shapes (ggml order).
  EXPECT_EQ(by_name["token_embd.weight"].ne, (std::vector<int64_t>{2048, 151669}));
  EXPECT_EQ(by_name["output.weight"].ne, (std::vector<int64_t>{2048, 151669}));
  EXPECT_EQ(by_name["blk.0.attn_q.weight"].ne, (std::vector<int64_t>{2048, 4096}));
  EXPECT_EQ(by_name["blk.0.attn_k.weight"].ne, (std::vector<int64_t>{2048, 512}));
  EXPECT_EQ(by_name["blk.47.attn_v.weight"].ne, (std::vector<int64_t>{2048, 512}));
  EXPECT_EQ(by_name["blk.0.attn_output.weight"].ne, (std::vector<int64_t>{4096, 2048}));
  EXPECT_EQ(by_name["blk.0.attn_q_norm.weight"].ne, (std::vector<int64_t>{128}));
  EXPECT_EQ(by_name["blk.5.ffn_gate_inp.weight"].ne, (std::vector<int64_t>{2048, 128}));
  EXPECT_EQ(by_name["blk.9.ffn_up_exps.weight"].ne, (std::vector<int64_t>{2048, 768, 128}));
  EXPECT_EQ(by_name["blk.47.ffn_down_exps.weight"].ne, (std::vector<int64_t>{768, 2048, 128}));
}

TEST(MkModelPlan, Qwen3_30B_A3B_Q4_K_M_MatchesReferenceRules) {
  check_30b_plan("Q4_K_M", expected_q4_k_m);
  // Spot checks of the rule itself for n = 48: layers 0-5 and 42-47 and 8, 11, ... get Q6_K.
  EXPECT_EQ(expected_q4_k_m("blk.5.attn_v.weight", 48), "q6_K");
  EXPECT_EQ(expected_q4_k_m("blk.6.attn_v.weight", 48), "q4_K");
  EXPECT_EQ(expected_q4_k_m("blk.8.ffn_down_exps.weight", 48), "q6_K");
  EXPECT_EQ(expected_q4_k_m("blk.41.ffn_down_exps.weight", 48), "q6_K");
  EXPECT_EQ(expected_q4_k_m("blk.40.ffn_down_exps.weight", 48), "q4_K");
}

TEST(MkModelPlan, Qwen3_30B_A3B_IQ4_NL_MatchesReferenceRules) { check_30b_plan("IQ4_NL", expected_iq4_nl); }

// The tiny presets reproduce the golden files' layouts (names, shapes and types, fallbacks included:
// expert rows of 64 are not a multiple of 256).
void check_matches_golden(const std::string& preset, const std::string& type, const std::string& golden_file) {
  const std::string path = golden("models/" + golden_file);
  auto plan = dry_run("--preset " + preset + " --type " + type + " --tokenizer-from '" + path + "'");
  gguf::File g = gguf::File::open(path);
  ASSERT_EQ(plan.size(), g.tensors().size()) << golden_file;
  std::map<std::string, PlanRow> by_name(plan.begin(), plan.end());
  for (const gguf::TensorInfo& t : g.tensors()) {
    auto it = by_name.find(t.name);
    ASSERT_NE(it, by_name.end()) << t.name;
    EXPECT_EQ(it->second.type, type_name(t.type)) << golden_file << " " << t.name;
    std::vector<int64_t> ne(t.ne.begin(), t.ne.begin() + t.n_dims);
    EXPECT_EQ(it->second.ne, ne) << golden_file << " " << t.name;
  }
}

TEST(MkModelPlan, TinyPresetsMatchGoldenLayouts) {
  check_matches_golden("tiny", "Q4_K_M", "tiny-q4_k_m.gguf");
  check_matches_golden("tiny", "IQ4_NL", "tiny-iq4_nl.gguf");
  check_matches_golden("tiny", "Q8_0", "tiny-q8_0.gguf");
  check_matches_golden("tiny-qwen3", "Q4_K_M", "tiny-qwen3-q4_k_m.gguf");
  check_matches_golden("tiny-qwen3", "Q8_0", "tiny-qwen3-q8_0.gguf");
  check_matches_golden("tiny-qwen2", "Q4_K_M", "tiny-qwen2-q4_k_m.gguf");
  check_matches_golden("tiny-qwen2", "Q8_0", "tiny-qwen2-q8_0.gguf");
}

TEST(MkModelPlan, BadArgumentsAreClearErrors) {
  RunResult r = run_command(tessera_cmd("mkmodel --preset nope --tokenizer-from x --dry-run"), true);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("unknown preset"), std::string::npos) << r.output;
  r = run_command(tessera_cmd("mkmodel --preset tiny --type Q3_XYZ --tokenizer-from '" + kVocab + "' --dry-run"), true);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("unknown --type"), std::string::npos) << r.output;
  r = run_command(tessera_cmd("mkmodel --preset tiny --layers 0 --tokenizer-from '" + kVocab + "' --dry-run"), true);
  EXPECT_NE(r.exit_code, 0);
}

// The small-vocab golden tokenizer keeps generated files small and fast.
const std::string kSmallVocab = golden("models/tiny-q8_0.gguf");

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

std::vector<float> dequantize(const gguf::TensorInfo& t) {
  std::vector<float> out(static_cast<size_t>(t.n_elements()));
  dequantize_row(t.type, t.data, out.data(), t.n_elements());
  return out;
}

void mean_std(const std::vector<float>& v, double& mean, double& std) {
  double s = 0, s2 = 0;
  for (float x : v) s += x, s2 += double(x) * x;
  mean = s / v.size();
  std = std::sqrt(s2 / v.size() - mean * mean);
}

TEST(MkModel, TinyModelLoadsWithRealisticScales) {
  TempDir dir;
  const std::string out = dir.file("tiny.gguf");
  RunResult r = run_command(tessera_cmd("mkmodel --preset tiny --type Q4_K_M --seed 7 --threads 2 --tokenizer-from '" +
                                        kSmallVocab + "' --out '" + out + "'"), true);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  gguf::File f = gguf::File::open(out);
  gguf::File vocab = gguf::File::open(kSmallVocab);
  EXPECT_EQ(f.get_string("general.architecture"), "qwen3moe");
  EXPECT_EQ(f.get_int("qwen3moe.block_count"), 2);
  EXPECT_EQ(f.get_int("qwen3moe.attention.key_length"), 64);
  EXPECT_EQ(f.get_int("qwen3moe.expert_count"), 128);
  EXPECT_EQ(f.get_int("general.file_type"), 15);
  EXPECT_EQ(f.get_array("tokenizer.ggml.tokens").strings, vocab.get_array("tokenizer.ggml.tokens").strings);
  EXPECT_EQ(f.get_array("tokenizer.ggml.merges").strings, vocab.get_array("tokenizer.ggml.merges").strings);
  EXPECT_EQ(f.get_string("tokenizer.chat_template"), vocab.get_string("tokenizer.chat_template"));
  EXPECT_EQ(f.tensor("token_embd.weight").ne[1], 4122);
  EXPECT_EQ(f.tensor("blk.1.ffn_down_exps.weight").type, GgmlType::Q8_0);  // Q6_K fallback

  double mean, std;
  mean_std(dequantize(f.tensor("blk.0.attn_norm.weight")), mean, std);
  EXPECT_NEAR(mean, 1.0, 0.02);
  EXPECT_LT(std, 0.2);
  mean_std(dequantize(f.tensor("blk.0.attn_q.weight")), mean, std);  // ~N(0, 1/sqrt(256))
  EXPECT_NEAR(mean, 0.0, 0.005);
  EXPECT_NEAR(std, 1.0 / 16, 0.01);
  mean_std(dequantize(f.tensor("blk.1.ffn_down_exps.weight")), mean, std);  // ~N(0, 1/sqrt(64))
  EXPECT_NEAR(std, 1.0 / 8, 0.01);
  mean_std(dequantize(f.tensor("blk.0.ffn_gate_inp.weight")), mean, std);  // wide router
  EXPECT_GT(std * 16, 2.0);

  // Python's gguf reader (llama.cpp's gguf-py) opens it and decodes every tensor.
  const std::string py =
      "import sys, gguf\n"
      "from gguf.quants import dequantize\n"
      "r = gguf.GGUFReader(sys.argv[1])\n"
      "assert bytes(r.fields['general.architecture'].parts[-1]).decode() == 'qwen3moe'\n"
      "n = sum(dequantize(t.data, t.tensor_type).size for t in r.tensors)\n"
      "print('ok', len(r.tensors), n)\n";
  std::ofstream(dir.file("check.py")) << py;
  r = run_command(std::string("'") + TESSERA_PYTHON + "' '" + dir.file("check.py") + "' '" + out + "'", true);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("ok 27 "), std::string::npos) << r.output;
}

TEST(MkModel, DeterministicForASeedWhateverTheThreads) {
  TempDir dir;
  auto make = [&](const std::string& name, int seed, int threads) {
    const std::string out = dir.file(name);
    RunResult r = run_command(tessera_cmd("mkmodel --preset tiny-qwen3 --type IQ4_NL --quiet --seed " +
                                          std::to_string(seed) + " --threads " + std::to_string(threads) +
                                          " --tokenizer-from '" + kSmallVocab + "' --out '" + out + "'"), true);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return read_file(out);
  };
  const std::string a = make("a.gguf", 3, 1), b = make("b.gguf", 3, 2), c = make("c.gguf", 4, 2);
  ASSERT_GT(a.size(), 1000000u);
  EXPECT_TRUE(a == b) << "same seed, different thread count: bytes differ";
  EXPECT_EQ(a.size(), c.size());
  EXPECT_FALSE(a == c) << "different seeds gave identical files";
}

}  // namespace
}  // namespace tessera::test
