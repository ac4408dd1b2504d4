// Tokenizer tests: llama.cpp's golden tokenizations, the tiny models' prompts, round trips and the
// streaming decoder.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace tessera::tok {
namespace {

const std::string kGolden = TESSERA_GOLDEN_DIR;

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  return nlohmann::json::parse(in);
}

const Tokenizer& qwen3() {
  static const gguf::File file = gguf::File::open(kGolden + "/models/vocab-qwen3.gguf");
  static const Tokenizer tok = Tokenizer::from_gguf(file);
  return tok;
}

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    bool irregular = false;
    const uint32_t cp = next_code_point(s, i, &irregular);
    if (irregular || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
  }
  return true;
}

TEST(Tokenizer, GoldenCases) {
  const auto cases = read_json(kGolden + "/tokenizer/cases.json");
  ASSERT_GE(cases.size(), 50u);
  int passed = 0;
  for (const auto& c : cases) {
    const std::string text = c["text"];
    const bool special = c["parse_special"];
    const auto want = c["ids"].get<std::vector<int32_t>>();
    const auto got = qwen3().encode(text, special);
    EXPECT_EQ(got, want) << "text: '" << text << "' parse_special=" << special;
    EXPECT_EQ(qwen3().decode(got), c["detok"].get<std::string>()) << "text: '" << text << "'";
    passed += got == want;
  }
  EXPECT_EQ(passed, static_cast<int>(cases.size()));
}

TEST(Tokenizer, Metadata) {
  const Tokenizer& t = qwen3();
  EXPECT_EQ(t.n_vocab(), 151669);
  EXPECT_FALSE(t.add_bos());
  EXPECT_EQ(t.pre_tokenizer(), "qwen2");
  EXPECT_EQ(t.eos(), 151645);
  EXPECT_EQ(t.bos(), 151643);
  EXPECT_EQ(t.fim_prefix(), 151659);
  EXPECT_EQ(t.fim_middle(), 151660);
  EXPECT_EQ(t.fim_suffix(), 151661);
  EXPECT_EQ(t.fim_pad(), 151662);
  EXPECT_EQ(t.repo_name(), 151663);
  EXPECT_EQ(t.file_sep(), 151664);
  // Qwen's end-of-generation set (shared reference: Tokenizer).
  for (int32_t id : {151643, 151645, 151662, 151663, 151664}) EXPECT_TRUE(t.is_eog(id)) << id;
  for (int32_t id : {0, 151644, 151659, 151660, 151661}) EXPECT_FALSE(t.is_eog(id)) << id;
  EXPECT_EQ(t.find_token("<|im_end|>"), 151645);
  EXPECT_FALSE(t.find_token("<|no such token|>").has_value());
  EXPECT_NE(t.chat_template().find("<|im_start|>"), std::string::npos);
  EXPECT_EQ(t.token_to_piece(151645), "<|im_end|>");
  EXPECT_EQ(t.token_to_piece(220), " ");
  EXPECT_THROW(t.token_to_piece(-1), Error);
  EXPECT_THROW(t.token_to_piece(t.n_vocab()), Error);
  // No BOS for Qwen even when asked for special parsing; explicit add_bos puts it first.
  EXPECT_EQ(t.encode("a", true, true).front(), 151643);
}

TEST(Tokenizer, TinyModelPrompts) {
  // The tiny models carry a truncated vocabulary (4096 tokens + renumbered added tokens).
  int checked = 0;
  for (const auto& dir : std::filesystem::directory_iterator(kGolden + "/logits")) {
    if (!dir.is_directory()) continue;
    const std::string name = dir.path().filename().string();
    // only the tiny models (real models such as smollm2 are not stored in the golden folder)
    if (name.rfind("tiny-", 0) != 0) continue;
    const auto file = gguf::File::open(kGolden + "/models/" + name + ".gguf");
    const auto tok = Tokenizer::from_gguf(file);
    EXPECT_EQ(tok.fim_prefix(), 4112);
    EXPECT_EQ(tok.eos(), 4098);
    for (const auto& c : read_json(dir.path().string() + "/cases.json")) {
      const std::string prompt = c["prompt"];
      EXPECT_EQ(tok.encode(prompt, true), c["prompt_tokens"].get<std::vector<int32_t>>()) << name << ": " << prompt;
      ++checked;
    }
  }
  EXPECT_GE(checked, 20);
}

// The real SmolLM2-135M (llama, `smollm` pre-tokenizer): both golden prompts tokenize exactly as llama.cpp
// did (special tokens parsed, no BOS), and its greedy tokens decode back to their pieces. Skipped when setup
// has not fetched the model into models/.
TEST(Tokenizer, SmolLM2PromptsMatchLlamaCpp) {
  const std::string path = std::string(TESSERA_SOURCE_DIR) + "/models/smollm2-135m-instruct-q4_1.gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << ": real model not fetched (scripts/fetch_models.sh)";
  const auto file = gguf::File::open(path);
  const auto tok = Tokenizer::from_gguf(file);
  EXPECT_EQ(tok.pre_tokenizer(), "smollm");
  EXPECT_FALSE(tok.add_bos());
  int checked = 0;
  for (const auto& c : read_json(kGolden + "/logits/smollm2-135m-q4_1/cases.json")) {
    const std::string prompt = c["prompt"];
    const auto want = c["prompt_tokens"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok.encode(prompt, true), want) << c["name"];
    EXPECT_EQ(tok.decode(want), prompt) << c["name"];
    ++checked;
  }
  EXPECT_EQ(checked, 2);
  // Digits are split one by one (the smollm pre-tokenizer's first stage), words keep their space.
  const auto ids = tok.encode("x = 2024", false);
  std::vector<std::string> pieces;
  for (int32_t id : ids) pieces.push_back(tok.token_to_piece(id));
  EXPECT_EQ(pieces, (std::vector<std::string>{"x", " =", " ", "2", "0", "2", "4"}));
}

// Random valid UTF-8 from a mix of ASCII code, whitespace, multi-byte scripts, emoji and
// fragments of special tokens.
std::string random_text(std::mt19937& rng) {
  static const std::vector<std::string> parts = {
      "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>", "<tool_call>", "<|fim_prefix|>",
      "<|", "|>", "<|im_", "im_end", "<tool", "_call>", " ", "  ", "\n", "\r\n", "\t", "\n\n", "'s", "'LL",
      "x", "def", "(", ")", "{", "}", ";", "42", "3.14", "é", "ñ", "日本語", "한국어", "Ελ", "🚀", "👍🏽", "\u00a0",
      "\u2028", "\u0301", "\u200d", "ǅ", "Ⅻ", "٣", "\u3000", "//", "->", "==", "\"", "'"};
  std::uniform_int_distribution<size_t> pick(0, parts.size() - 1), len(0, 40), cp(0x20, 0x2FFFF);
  std::string s;
  const size_t n = len(rng);
  for (size_t i = 0; i < n; ++i) {
    if (rng() % 8 == 0) {
      uint32_t c = static_cast<uint32_t>(cp(rng));
      if (c >= 0xD800 && c <= 0xDFFF) c = 'z';
      append_utf8(s, c);
    } else {
      s += parts[pick(rng)];
    }
  }
  return s;
}

TEST(Tokenizer, RoundTripWithoutSpecialParsing) {
  std::mt19937 rng(1234);
  for (int i = 0; i < 3000; ++i) {
    const std::string text = random_text(rng);
    const auto ids = qwen3().encode(text, false);
    ASSERT_EQ(qwen3().decode(ids), text);
    // CONTROL tokens are never produced from text when special parsing is off.
    for (int32_t id : ids) ASSERT_NE(qwen3().token_type(id), TokenType::CONTROL) << text;
  }
}

TEST(Tokenizer, RoundTripWithSpecialParsing) {
  std::mt19937 rng(99);
  for (int i = 0; i < 1000; ++i) {
    const std::string text = random_text(rng);
    ASSERT_EQ(qwen3().decode(qwen3().encode(text, true)), text);
  }
}

TEST(Tokenizer, InvalidUtf8BecomesReplacementCharacter) {
  // Like llama.cpp: each invalid byte is read as U+FFFD.
  const auto ids = qwen3().encode("a\xff" "b\xc3", false);
  EXPECT_EQ(qwen3().decode(ids), "a\xEF\xBF\xBD" "b\xEF\xBF\xBD");
}

TEST(StreamDecoder, NeverEmitsBrokenUtf8) {
  std::mt19937 rng(7);
  int split_pieces = 0;
  for (int i = 0; i < 2000; ++i) {
    const std::string text = random_text(rng);
    const auto ids = qwen3().encode(text, true);
    StreamDecoder dec(qwen3());
    std::string all;
    for (int32_t id : ids) {
      const std::string chunk = dec.push(id);
      ASSERT_TRUE(valid_utf8(chunk)) << "chunk of '" << text << "'";
      split_pieces += !valid_utf8(qwen3().token_to_piece(id));
      all += chunk;
    }
    const std::string rest = dec.flush();
    EXPECT_TRUE(rest.empty());
    all += rest;
    ASSERT_EQ(all, qwen3().decode(ids));
  }
  EXPECT_GT(split_pieces, 100);  // the test did see tokens that end inside a character
}

TEST(StreamDecoder, FlushReplacesHeldBytes) {
  const Tokenizer& t = qwen3();
  // "🚀" is F0 9F 9A 80; feed its bytes as single-byte tokens.
  StreamDecoder dec(t);
  const auto ids = t.encode("🚀", false);
  std::vector<int32_t> bytes;
  for (unsigned char b : std::string("🚀")) bytes.push_back(t.byte_token(b));
  EXPECT_EQ(dec.push(bytes[0]), "");
  EXPECT_EQ(dec.push(bytes[1]), "");
  EXPECT_EQ(dec.flush(), "\xEF\xBF\xBD");  // the cut-off F0 9F as one U+FFFD
  EXPECT_EQ(dec.push(bytes[0]), "");
  EXPECT_EQ(dec.push(bytes[1]), "");
  EXPECT_EQ(dec.push(bytes[2]), "");
  EXPECT_EQ(dec.push(bytes[3]), "🚀");
  EXPECT_EQ(t.decode(ids), "🚀");
}

TEST(PreTokenizer, MatchesTheSplitRegexes) {
  // Expected pieces come from Python's `regex` module (make_pretokenizer_cases.py).
  std::ifstream in(std::string(TESSERA_SOURCE_DIR) + "/tests/tokenizer/pretokenizer_cases.json");
  const auto cases = nlohmann::json::parse(in);
  ASSERT_GE(cases.size(), 90u);
  for (const auto& c : cases) {
    const PreTokenizer* pre = find_pre_tokenizer(c["pre"].get<std::string>());
    ASSERT_NE(pre, nullptr) << c["pre"];
    const std::string text = c["text"];
    std::vector<uint32_t> cps;
    for (size_t i = 0; i < text.size();) cps.push_back(next_code_point(text, i, nullptr));
    std::vector<uint8_t> cls;
    for (uint32_t cp : cps) cls.push_back(cp_class(cp));
    std::vector<uint32_t> ends;
    pre_tokenize(*pre, cps, cls, ends);
    std::vector<std::string> pieces;
    uint32_t start = 0;
    for (uint32_t e : ends) {
      std::string p;
      for (uint32_t k = start; k < e; ++k) append_utf8(p, cps[k]);
      pieces.push_back(p);
      start = e;
    }
    EXPECT_EQ(pieces, c["pieces"].get<std::vector<std::string>>()) << c["pre"] << ": '" << text << "'";
  }
}

TEST(Tokenizer, ConcurrentEncodeAgrees) {
  // The piece cache is shared; encoding from several threads must give the same ids.
  std::mt19937 rng(5);
  std::vector<std::string> texts;
  for (int i = 0; i < 400; ++i) texts.push_back(random_text(rng));
  std::vector<std::vector<int32_t>> want;
  for (const auto& t : texts) want.push_back(qwen3().encode(t, true));
  std::vector<int> bad(4, 0);
  std::vector<std::thread> threads;
  for (int th = 0; th < 4; ++th)
    threads.emplace_back([&, th] {
      for (size_t i = static_cast<size_t>(th); i < texts.size() * 3; i += 4)
        bad[th] += qwen3().encode(texts[i % texts.size()], true) != want[i % texts.size()];
    });
  for (auto& t : threads) t.join();
  for (int th = 0; th < 4; ++th) EXPECT_EQ(bad[th], 0) << "thread " << th;
}

TEST(Tokenizer, RejectsBadMetadata) {
  gguf::Writer w;
  w.set_string("tokenizer.ggml.model", "llama");
  const auto f1 = gguf::File::from_memory(w.to_bytes(), "spm.gguf");
  EXPECT_THROW(Tokenizer::from_gguf(f1), Error);
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", "no-such-pre");
  const auto f2 = gguf::File::from_memory(w.to_bytes(), "pre.gguf");
  try {
    Tokenizer::from_gguf(f2);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-pre"), std::string::npos) << e.what();
  }
  w.set_string("tokenizer.ggml.pre", "qwen2");
  const auto f3 = gguf::File::from_memory(w.to_bytes(), "notokens.gguf");
  EXPECT_THROW(Tokenizer::from_gguf(f3), Error);  // no tokenizer.ggml.tokens
}

}  // namespace
}  // namespace tessera::tok
