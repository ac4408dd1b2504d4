// Tests for `tessera quantize`: per-tensor types follow the scheme rules (the golden files' layouts),
// values stay close to the source, output loads in our reader and Python's gguf, requantization is
// refused unless asked.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "gguf/codecs.h"
#include "gguf/gguf.h"
#include "gguf/half.h"
#include "tests/tools/tool_test_util.h"

namespace tessera::test {
namespace {

const std::string kSmallVocab = golden("models/tiny-q8_0.gguf");

// One F16 tiny model shared by the tests in this file (made once).
class Quantize : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    RunResult r = run_command(tessera_cmd("mkmodel --preset tiny --type F16 --quiet --seed 5 --tokenizer-from '" +
                                          kSmallVocab + "' --out '" + f16() + "'"), true);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string f16() { return dir_->file("tiny-f16.gguf"); }
  static std::string file(const std::string& name) { return dir_->file(name); }
  static RunResult quantize(const std::string& in, const std::string& out, const std::string& type,
                            const std::string& extra = "") {
    return run_command(tessera_cmd("quantize '" + in + "' '" + out + "' " + type + " --quiet --threads 2 " + extra), true);
  }
  static TempDir* dir_;
};
TempDir* Quantize::dir_ = nullptr;

void expect_layout_like(const std::string& path, const std::string& golden_file) {
  gguf::File f = gguf::File::open(path);
  gguf::File g = gguf::File::open(golden("models/" + golden_file));
  ASSERT_EQ(f.tensors().size(), g.tensors().size());
  for (const gguf::TensorInfo& t : g.tensors())
    EXPECT_EQ(type_name(f.tensor(t.name).type), type_name(t.type)) << golden_file << " " << t.name;
  EXPECT_EQ(f.get_int("general.file_type"), g.get_int("general.file_type"));
}

double nmse(const gguf::TensorInfo& a, const gguf::TensorInfo& b) {
  std::vector<float> x(a.n_elements()), y(b.n_elements());
  dequantize_row(a.type, a.data, x.data(), a.n_elements());
  dequantize_row(b.type, b.data, y.data(), b.n_elements());
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) num += (x[i] - y[i]) * double(x[i] - y[i]), den += double(x[i]) * x[i];
  return num / den;
}

TEST_F(Quantize, Q4_K_M_And_IQ4_NL_FollowTheRules) {
  ASSERT_EQ(quantize(f16(), file("q4km.gguf"), "Q4_K_M").exit_code, 0);
  expect_layout_like(file("q4km.gguf"), "tiny-q4_k_m.gguf");
  ASSERT_EQ(quantize(f16(), file("iq4nl.gguf"), "iq4_nl").exit_code, 0);
  expect_layout_like(file("iq4nl.gguf"), "tiny-iq4_nl.gguf");
  ASSERT_EQ(quantize(f16(), file("q8.gguf"), "Q8_0").exit_code, 0);
  expect_layout_like(file("q8.gguf"), "tiny-q8_0.gguf");

  // Values stay close to the F16 source; metadata is carried over.
  gguf::File src = gguf::File::open(f16()), q = gguf::File::open(file("q4km.gguf"));
  EXPECT_LT(nmse(src.tensor("blk.0.attn_q.weight"), q.tensor("blk.0.attn_q.weight")), 0.01);     // Q4_K
  EXPECT_LT(nmse(src.tensor("output.weight"), q.tensor("output.weight")), 0.003);                 // Q6_K
  EXPECT_EQ(nmse(src.tensor("blk.0.ffn_norm.weight"), q.tensor("blk.0.ffn_norm.weight")), 0.0);  // F32 kept
  EXPECT_EQ(q.get_string("general.architecture"), "qwen3moe");
  EXPECT_EQ(q.get_array("tokenizer.ggml.tokens").size(), src.get_array("tokenizer.ggml.tokens").size());
}

// The golden dense qwen3 model in BF16, quantized by us, has llama.cpp's layouts and values close to
// llama.cpp's own Q8_0 / Q4_K_M files of the same model.
TEST_F(Quantize, GoldenBf16ModelMatchesLlamaCppFiles) {
  const std::string bf16 = golden("models/tiny-qwen3-bf16.gguf");
  ASSERT_EQ(quantize(bf16, file("qwen3-q8.gguf"), "Q8_0").exit_code, 0);
  expect_layout_like(file("qwen3-q8.gguf"), "tiny-qwen3-q8_0.gguf");
  ASSERT_EQ(quantize(bf16, file("qwen3-q4km.gguf"), "Q4_K_M").exit_code, 0);
  expect_layout_like(file("qwen3-q4km.gguf"), "tiny-qwen3-q4_k_m.gguf");
  gguf::File ours = gguf::File::open(file("qwen3-q8.gguf"));
  gguf::File theirs = gguf::File::open(golden("models/tiny-qwen3-q8_0.gguf"));
  for (const gguf::TensorInfo& t : theirs.tensors())
    EXPECT_LT(nmse(t, ours.tensor(t.name)), 1e-4) << t.name;
}

TEST_F(Quantize, EverySchemeWritesALoadableFile) {
  const std::pair<const char*, GgmlType> cases[] = {
      {"Q4_0", GgmlType::Q4_0},     {"Q5_K_M", GgmlType::Q5_K}, {"Q6_K", GgmlType::Q6_K},
      {"IQ4_XS", GgmlType::IQ4_XS}, {"MXFP4", GgmlType::MXFP4}, {"F16", GgmlType::F16},
  };
  for (const auto& [name, main_type] : cases) {
    const std::string out = file(std::string("s-") + name + ".gguf");
    RunResult r = quantize(f16(), out, name);
    ASSERT_EQ(r.exit_code, 0) << name << ": " << r.output;
    gguf::File f = gguf::File::open(out);
    // blk.0.attn_q (256 x 512) takes the scheme's main type in every scheme (MXFP4: Q8_0, 2-D).
    const GgmlType q_type = main_type == GgmlType::MXFP4 ? GgmlType::Q8_0 : main_type;
    EXPECT_EQ(type_name(f.tensor("blk.0.attn_q.weight").type), type_name(q_type)) << name;
    EXPECT_EQ(f.tensor("blk.0.ffn_gate_inp.weight").type, GgmlType::F32) << name;
    if (main_type == GgmlType::MXFP4) EXPECT_EQ(f.tensor("blk.0.ffn_up_exps.weight").type, GgmlType::MXFP4);
  }
}

TEST_F(Quantize, OutputLoadsInPythonGguf) {
  ASSERT_EQ(quantize(f16(), file("py.gguf"), "Q4_K_M").exit_code, 0);
  std::ofstream(file("check.py")) << "import sys, gguf\n"
                                     "from gguf.quants import dequantize\n"
                                     "r = gguf.GGUFReader(sys.argv[1])\n"
                                     "n = sum(dequantize(t.data, t.tensor_type).size for t in r.tensors)\n"
                                     "print('ok', len(r.tensors), n)\n";
  RunResult r = run_command(std::string("'") + TESSERA_PYTHON + "' '" + file("check.py") + "' '" + file("py.gguf") + "'", true);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("ok 27 "), std::string::npos) << r.output;
}

TEST_F(Quantize, RefusesToRequantizeUnlessAllowed) {
  ASSERT_EQ(quantize(f16(), file("base.gguf"), "Q4_K_M").exit_code, 0);
  RunResult r = quantize(file("base.gguf"), file("re.gguf"), "Q8_0");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("refusing to requantize"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(file("re.gguf")));

  // The same scheme again needs no requantization: every tensor is copied byte for byte.
  ASSERT_EQ(quantize(file("base.gguf"), file("same.gguf"), "Q4_K_M").exit_code, 0);
  gguf::File a = gguf::File::open(file("base.gguf")), b = gguf::File::open(file("same.gguf"));
  for (const gguf::TensorInfo& t : a.tensors()) {
    const gguf::TensorInfo& u = b.tensor(t.name);
    ASSERT_EQ(t.nbytes, u.nbytes);
    EXPECT_EQ(std::memcmp(t.data, u.data, t.nbytes), 0) << t.name;
  }

  r = quantize(file("base.gguf"), file("re.gguf"), "Q8_0", "--allow-requantize");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  gguf::File re = gguf::File::open(file("re.gguf"));
  EXPECT_EQ(re.tensor("blk.0.attn_q.weight").type, GgmlType::Q8_0);
  EXPECT_LT(nmse(a.tensor("blk.0.attn_q.weight"), re.tensor("blk.0.attn_q.weight")), 1e-3);
}

TEST_F(Quantize, BadArgumentsAreClearErrors) {
  RunResult r = quantize(f16(), file("x.gguf"), "Q9_Z");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("unknown type"), std::string::npos) << r.output;
  r = quantize(file("missing.gguf"), file("x.gguf"), "Q8_0");
  EXPECT_EQ(r.exit_code, 1);
  r = quantize(f16(), f16(), "Q8_0");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("is the input file"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace tessera::test
