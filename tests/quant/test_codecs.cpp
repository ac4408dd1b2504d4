// Reference codecs against ggml's goldens (tests/golden/quant): decoders bit-exact for every type,
// simple encoders byte-identical, searching encoders within 2% of ggml's NMSE; plus round-trip
// properties on random, constant, zero, huge and tiny rows.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "gguf/codecs.h"
#include "gguf/ggml_types.h"
#include "gguf/half.h"
#include "gguf/quant_blocks.h"

using namespace tessera;

namespace {

const std::string kQuantDir = std::string(TESSERA_GOLDEN_DIR) + "/quant/";

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

std::vector<float> read_f32(const std::string& path) {
  const std::vector<uint8_t> b = read_bytes(path);
  std::vector<float> v(b.size() / 4);
  std::memcpy(v.data(), b.data(), v.size() * 4);
  return v;
}

struct GoldenType {
  std::string name;
  GgmlType type;
  double nmse;  // what ggml's quantizer reached
  std::vector<uint8_t> quantized;
  std::vector<float> dequantized;
};

struct Golden {
  int64_t rows = 0, cols = 0;
  std::vector<float> input;  // [rows][cols]
  std::vector<GoldenType> types;
};

const Golden& golden() {
  static const Golden g = [] {
    Golden g;
    std::ifstream f(kQuantDir + "index.json");
    const nlohmann::json j = nlohmann::json::parse(f);
    g.rows = j.at("rows");
    g.cols = j.at("cols");
    g.input = read_f32(kQuantDir + j.at("input").get<std::string>());
    for (const auto& t : j.at("types")) {
      GoldenType gt;
      gt.name = t.at("type");
      gt.type = static_cast<GgmlType>(t.at("ggml_type_id").get<uint32_t>());
      gt.nmse = t.at("nmse");
      gt.quantized = read_bytes(kQuantDir + t.at("quantized").get<std::string>());
      gt.dequantized = read_f32(kQuantDir + t.at("dequantized").get<std::string>());
      g.types.push_back(std::move(gt));
    }
    return g;
  }();
  return g;
}

// Quantizes every row of x ([rows][cols]) into one buffer.
std::vector<uint8_t> quantize_rows(GgmlType t, const std::vector<float>& x, int64_t rows, int64_t cols) {
  const size_t rb = row_bytes(t, cols);
  std::vector<uint8_t> q(rb * rows);
  for (int64_t r = 0; r < rows; ++r) EXPECT_EQ(quantize_row(t, x.data() + r * cols, q.data() + r * rb, cols), rb);
  return q;
}

std::vector<float> dequantize_rows(GgmlType t, const std::vector<uint8_t>& q, int64_t rows, int64_t cols) {
  const size_t rb = row_bytes(t, cols);
  std::vector<float> y(rows * cols);
  for (int64_t r = 0; r < rows; ++r) dequantize_row(t, q.data() + r * rb, y.data() + r * cols, cols);
  return y;
}

double nmse(const std::vector<float>& x, const std::vector<float>& y) {
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    num += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    den += double(x[i]) * x[i];
  }
  return num / den;
}

// Types whose reference encoder is a simple rule and must reproduce ggml's bytes.
bool byte_identical_expected(GgmlType t) {
  switch (t) {
    case GgmlType::F16: case GgmlType::BF16: case GgmlType::Q4_0: case GgmlType::Q4_1:
    case GgmlType::Q5_0: case GgmlType::Q5_1: case GgmlType::Q8_0: case GgmlType::MXFP4:
      return true;
    default:
      return false;
  }
}

}  // namespace

TEST(Codecs, GoldensCoverEveryDecoder) {
  const Golden& g = golden();
  EXPECT_EQ(g.rows * g.cols, static_cast<int64_t>(g.input.size()));
  EXPECT_EQ(g.types.size(), 15u);
  for (const GoldenType& t : g.types) EXPECT_TRUE(has_decoder(t.type)) << t.name;
}

TEST(Codecs, DecodersAreBitExact) {
  const Golden& g = golden();
  for (const GoldenType& t : g.types) {
    ASSERT_EQ(t.quantized.size(), row_bytes(t.type, g.cols) * g.rows) << t.name;
    ASSERT_EQ(t.dequantized.size(), g.input.size()) << t.name;
    const std::vector<float> y = dequantize_rows(t.type, t.quantized, g.rows, g.cols);
    size_t mismatches = 0, first = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      if (f32_bits(y[i]) != f32_bits(t.dequantized[i]) && mismatches++ == 0) first = i;
    }
    EXPECT_EQ(mismatches, 0u) << t.name << ": first mismatch at row " << first / g.cols << " col "
                              << first % g.cols << ": got " << y[first] << " want " << t.dequantized[first];
  }
}

TEST(Codecs, SimpleEncodersAreByteIdentical) {
  const Golden& g = golden();
  for (const GoldenType& t : g.types) {
    if (!byte_identical_expected(t.type)) continue;
    const std::vector<uint8_t> q = quantize_rows(t.type, g.input, g.rows, g.cols);
    ASSERT_EQ(q.size(), t.quantized.size()) << t.name;
    size_t first = q.size();
    for (size_t i = 0; i < q.size() && first == q.size(); ++i)
      if (q[i] != t.quantized[i]) first = i;
    EXPECT_EQ(first, q.size()) << t.name << ": first differing byte " << first << " (row "
                               << first / row_bytes(t.type, g.cols) << ")";
  }
}

TEST(Codecs, EncoderNmseWithinTwoPercentOfGgml) {
  const Golden& g = golden();
  std::printf("%-8s %14s %14s %8s\n", "type", "nmse(ours)", "nmse(ggml)", "ratio");
  for (const GoldenType& t : g.types) {
    ASSERT_TRUE(has_encoder(t.type)) << t.name;
    const std::vector<float> y = dequantize_rows(t.type, quantize_rows(t.type, g.input, g.rows, g.cols), g.rows, g.cols);
    const double ours = nmse(g.input, y);
    std::printf("%-8s %14.6e %14.6e %8.4f\n", t.name.c_str(), ours, t.nmse, ours / t.nmse);
    RecordProperty("nmse_" + t.name, std::to_string(ours));
    EXPECT_LE(ours, 1.02 * t.nmse) << t.name;
    // the golden's own NMSE, recomputed from its dequantized data, agrees with index.json
    EXPECT_NEAR(nmse(g.input, t.dequantized), t.nmse, 1e-6 * t.nmse + 1e-12) << t.name;
  }
  std::fflush(stdout);
}

// ---- round-trip properties -------------------------------------------------------------------------

namespace {

const GgmlType kAllEncoders[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16,   GgmlType::Q4_0,
                                 GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,   GgmlType::Q8_0,
                                 GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K,   GgmlType::Q5_K,
                                 GgmlType::Q6_K, GgmlType::Q8_K, GgmlType::IQ4_NL, GgmlType::IQ4_XS,
                                 GgmlType::MXFP4};

// Loose per-type NMSE bound for Gaussian data (ggml's figures on the golden input are 2-10x lower).
double nmse_bound(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return 0;
    case GgmlType::F16: return 1e-6;
    case GgmlType::BF16: return 1e-4;
    case GgmlType::Q8_0: case GgmlType::Q8_K: return 1e-3;
    case GgmlType::Q6_K: return 4e-3;
    case GgmlType::Q5_0: case GgmlType::Q5_1: case GgmlType::Q5_K: return 2e-2;
    case GgmlType::Q2_K: return 0.3;
    default: return 0.1;
  }
}

// Encodes and decodes one row; checks size, finiteness, and returns the decoded values.
std::vector<float> round_trip(GgmlType t, const std::vector<float>& x) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> q(row_bytes(t, n) + 1, 0xee);  // one guard byte past the row
  EXPECT_EQ(quantize_row(t, x.data(), q.data(), n), row_bytes(t, n));
  EXPECT_EQ(q.back(), 0xee) << type_name(t) << ": wrote past the row";
  std::vector<float> y(n);
  dequantize_row(t, q.data(), y.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(y[i])) {
      ADD_FAILURE() << type_name(t) << ": non-finite output at " << i << " for input " << x[i];
      break;
    }
  }
  return y;
}

}  // namespace

TEST(Codecs, RoundTripRandomRowsOfSeveralLengths) {
  std::mt19937 rng(1234);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (GgmlType t : kAllEncoders) {
    const int64_t bs = type_traits(t).block_size;
    for (int64_t blocks : {1, 3, 7}) {
      std::vector<float> x(blocks * (bs == 1 ? 33 : bs));
      for (float& v : x) v = normal(rng) * 0.02f;
      const std::vector<float> y = round_trip(t, x);
      EXPECT_LE(nmse(x, y), nmse_bound(t)) << type_name(t) << " n=" << x.size();
    }
  }
}

TEST(Codecs, RoundTripZerosAndConstants) {
  for (GgmlType t : kAllEncoders) {
    const int64_t n = type_traits(t).block_size == 1 ? 64 : 512;
    EXPECT_EQ(round_trip(t, std::vector<float>(n, 0.0f)), std::vector<float>(n, 0.0f)) << type_name(t);
    for (float c : {1.0f, -0.37f, 1000.0f}) {
      const std::vector<float> y = round_trip(t, std::vector<float>(n, c));
      for (int64_t i = 0; i < n; ++i) {
        // Constant rows keep their value within the format's relative resolution
        // (MXFP4 clips to 1.5x a power of two below |c|; Q2_K's min/scale are 4-bit).
        const float tol = t == GgmlType::MXFP4 ? 0.34f : (t == GgmlType::Q2_K ? 0.07f : 0.02f);
        ASSERT_NEAR(y[i], c, tol * std::fabs(c)) << type_name(t) << " c=" << c << " i=" << i;
      }
    }
  }
}

TEST(Codecs, RoundTripHugeTinyAndMixedMagnitudes) {
  std::mt19937 rng(99);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (GgmlType t : kAllEncoders) {
    const int64_t n = 512;
    // huge values (kept below 65504, the fp16 limit: F16 values and Q4_1 / Q5_1 mins are fp16), tiny
    // values whose scales underflow fp16, and a row mixing both
    for (float mag : {1e4f, 1e-3f, 1e-9f, 1e-30f, 0.0f}) {
      std::vector<float> x(n);
      for (int64_t i = 0; i < n; ++i) {
        x[i] = mag == 0 ? (i % 2 ? 1e4f : 1e-30f) * normal(rng) : mag * normal(rng);
        x[i] = std::fmin(std::fmax(x[i], -6e4f), 6e4f);
      }
      const std::vector<float> y = round_trip(t, x);
      if (mag >= 1e-3f) EXPECT_LE(nmse(x, y), nmse_bound(t)) << type_name(t) << " mag=" << mag;
    }
    // one enormous outlier in an otherwise small row
    std::vector<float> x(n, 0.01f);
    x[5] = 6e4f;
    round_trip(t, x);
  }
}

TEST(Codecs, SearchingEncodersSaturateScalesBeyondFp16) {
  // Values far beyond fp16 range: the K-quant / IQ4 scales saturate instead of overflowing to inf
  // (the simple types keep ggml's behaviour, which overflows, and F16 cannot hold such values).
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(512);
  for (float& v : x) v = 1e9f * normal(rng);
  for (GgmlType t : {GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K,
                     GgmlType::IQ4_NL, GgmlType::IQ4_XS, GgmlType::MXFP4, GgmlType::BF16, GgmlType::Q8_K})
    round_trip(t, x);
}

TEST(Codecs, NonFiniteInputDoesNotCrash) {
  // Garbage in, garbage out, but no crash or undefined behaviour (run under UBSan to check).
  std::vector<float> x(512, 0.5f);
  x[3] = NAN;
  x[300] = INFINITY;
  x[301] = -INFINITY;
  std::vector<uint8_t> q(4096);
  std::vector<float> y(512);
  for (GgmlType t : kAllEncoders) {
    quantize_row(t, x.data(), q.data(), 512);
    dequantize_row(t, q.data(), y.data(), 512);
  }
}

TEST(Codecs, Q8KRoundTripAndBlockSums) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(2 * QK_K);
  for (float& v : x) v = normal(rng);
  std::vector<block_q8_K> q(2);
  quantize_row(GgmlType::Q8_K, x.data(), q.data(), 2 * QK_K);
  std::vector<float> y(2 * QK_K);
  dequantize_row(GgmlType::Q8_K, q.data(), y.data(), 2 * QK_K);
  for (int b = 0; b < 2; ++b) {
    for (int g = 0; g < QK_K / 16; ++g) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += q[b].qs[16 * g + j];
      EXPECT_EQ(q[b].bsums[g], sum);
    }
    for (int j = 0; j < QK_K; ++j) {
      EXPECT_EQ(y[b * QK_K + j], q[b].d * q[b].qs[j]);
      EXPECT_LE(std::fabs(y[b * QK_K + j] - x[b * QK_K + j]), 0.5f * std::fabs(q[b].d) * 1.0001f);
    }
  }
}

TEST(Codecs, BadLengthsAndUnsupportedTypesThrow) {
  std::vector<float> x(300, 1.0f);
  std::vector<uint8_t> q(4096);
  EXPECT_THROW(quantize_row(GgmlType::Q4_K, x.data(), q.data(), 300), Error);
  EXPECT_THROW(quantize_row(GgmlType::Q8_0, x.data(), q.data(), 33), Error);
  EXPECT_THROW(dequantize_row(GgmlType::Q6_K, q.data(), x.data(), 255), Error);
  EXPECT_THROW(dequantize_row(GgmlType::Q4_0, q.data(), x.data(), -32), Error);
  EXPECT_FALSE(has_decoder(GgmlType::IQ2_XXS));
  EXPECT_FALSE(has_encoder(GgmlType::IQ2_XXS));
  EXPECT_THROW(dequantize_row(GgmlType::IQ2_XXS, q.data(), x.data(), 256), Error);
  EXPECT_THROW(quantize_row(GgmlType::I32, x.data(), q.data(), 32), Error);
}
