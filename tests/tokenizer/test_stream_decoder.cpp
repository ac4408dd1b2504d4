// StreamDecoder emits only complete, valid UTF-8: bytes that can never complete a character become
// U+FFFD, one per maximal invalid subpart, exactly like Python's bytes.decode('utf-8', 'replace').
// Checked against the reference decoder in utf8_reference.h on random token sequences drawn from
// whole vocabularies, and on hand cases.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "tests/tokenizer/utf8_reference.h"
#include "tokenizer/tokenizer.h"

namespace tessera::tok {
namespace {

using test::decode_replacing;
using test::kReplacement;
using test::valid_utf8;

const Tokenizer& load(const std::string& name) {
  static std::map<std::string, std::pair<gguf::File, Tokenizer>> cache;
  auto it = cache.find(name);
  if (it == cache.end()) {
    gguf::File f = gguf::File::open(std::string(TESSERA_GOLDEN_DIR) + "/models/" + name);
    Tokenizer t = Tokenizer::from_gguf(f);
    it = cache.emplace(name, std::pair{std::move(f), std::move(t)}).first;
  }
  return it->second.second;
}

std::string hex(std::string_view s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) out += {'\\', 'x', digits[c >> 4], digits[c & 15]};
  return out;
}

// Random id sequences pushed one at a time: every piece is valid UTF-8 and the whole stream equals
// decode_replacing() of the raw token bytes. Every other sequence draws half its ids from the
// tokens whose bytes are not valid UTF-8 on their own (byte tokens, pieces of characters), so
// sequences that complete, break and truncate characters are all common.
void check_random_sequences(const Tokenizer& t, uint32_t seed, int n_sequences) {
  std::vector<int32_t> broken;
  for (int32_t id = 0; id < t.n_vocab(); ++id)
    if (!valid_utf8(t.token_to_piece(id))) broken.push_back(id);
  ASSERT_GE(broken.size(), 128u);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> any(0, t.n_vocab() - 1);
  std::uniform_int_distribution<size_t> pick_broken(0, broken.size() - 1), length(1, 24);
  int replaced = 0, held = 0;
  for (int n = 0; n < n_sequences; ++n) {
    StreamDecoder dec(t);
    std::string raw, streamed;
    std::vector<int32_t> ids;
    const size_t len = length(rng);
    for (size_t i = 0; i < len; ++i) {
      const int32_t id = n % 2 == 1 && rng() % 2 == 0 ? broken[pick_broken(rng)] : any(rng);
      ids.push_back(id);
      raw += t.token_to_piece(id);
      const std::string piece = dec.push(id);
      ASSERT_TRUE(valid_utf8(piece)) << "seed " << seed << " sequence " << n << " piece " << hex(piece);
      held += piece.empty() && !t.token_to_piece(id).empty();
      streamed += piece;
    }
    const std::string rest = dec.flush();
    ASSERT_TRUE(valid_utf8(rest)) << "seed " << seed << " sequence " << n << " flush " << hex(rest);
    streamed += rest;
    const std::string want = decode_replacing(raw);
    ASSERT_EQ(streamed, want) << "seed " << seed << " sequence " << n << " raw " << hex(raw) << "\n got "
                              << hex(streamed) << "\nwant " << hex(want);
    replaced += want != raw;
  }
  // The sequences did exercise both paths.
  EXPECT_GT(replaced, n_sequences / 10);
  EXPECT_GT(held, n_sequences / 10);
}

TEST(StreamDecoderUtf8, RandomSequencesTinyModel) { check_random_sequences(load("tiny-q8_0.gguf"), 1, 4000); }
TEST(StreamDecoderUtf8, RandomSequencesQwen3) { check_random_sequences(load("vocab-qwen3.gguf"), 2, 4000); }

// Pushes each byte as its byte token; returns what every push returned, then what flush returned.
std::vector<std::string> stream_bytes(std::string_view bytes) {
  const Tokenizer& t = load("vocab-qwen3.gguf");
  StreamDecoder dec(t);
  std::vector<std::string> out;
  for (unsigned char b : bytes) out.push_back(dec.push(t.byte_token(b)));
  out.push_back(dec.flush());
  return out;
}

using Pieces = std::vector<std::string>;
const std::string R = kReplacement;

TEST(StreamDecoderUtf8, EmojiOverFourByteTokensIsEmittedWhenComplete) {
  EXPECT_EQ(stream_bytes("\xF0\x9F\x9A\x80"), (Pieces{"", "", "", "\xF0\x9F\x9A\x80", ""}));
}

TEST(StreamDecoderUtf8, LoneContinuationByteIsReplacedAtOnce) {
  EXPECT_EQ(stream_bytes("\x80" "a"), (Pieces{R, "a", ""}));
  EXPECT_EQ(stream_bytes("\xC3\xA9\xA9"), (Pieces{"", "\xC3\xA9", R, ""}));
}

TEST(StreamDecoderUtf8, TruncatedSequenceThenAscii) {
  EXPECT_EQ(stream_bytes("\xE6\x97" "A"), (Pieces{"", "", R + "A", ""}));   // one U+FFFD for E6 97
  EXPECT_EQ(stream_bytes("\xF0\x9F\x9A" "b"), (Pieces{"", "", "", R + "b", ""}));
}

TEST(StreamDecoderUtf8, OverlongIsTwoReplacements) {
  // C0 can never start a valid sequence, so it is replaced as soon as it arrives.
  EXPECT_EQ(stream_bytes("\xC0\x80"), (Pieces{R, R, ""}));
  EXPECT_EQ(stream_bytes("\xE0\x80\xAF"), (Pieces{"", R + R, R, ""}));  // overlong 3-byte '/'
}

TEST(StreamDecoderUtf8, SurrogateIsReplacedByteByByte) {
  // ED A0 80 would be U+D800: ED only continues with 80..9F, so as in Python: three U+FFFD.
  EXPECT_EQ(stream_bytes("\xED\xA0\x80"), (Pieces{"", R + R, R, ""}));
  EXPECT_EQ(stream_bytes("\xED\x9F\xBF"), (Pieces{"", "", "\xED\x9F\xBF", ""}));  // U+D7FF is fine
}

TEST(StreamDecoderUtf8, AboveU10FFFFAndBadLeadBytes) {
  EXPECT_EQ(stream_bytes("\xF4\x90\x80\x80"), (Pieces{"", R + R, R, R, ""}));
  EXPECT_EQ(stream_bytes("\xF4\x8F\xBF\xBF"), (Pieces{"", "", "", "\xF4\x8F\xBF\xBF", ""}));  // U+10FFFF
  EXPECT_EQ(stream_bytes("\xF5\xFF" "x"), (Pieces{R, R, "x", ""}));
}

TEST(StreamDecoderUtf8, FlushReplacesAnIncompleteTail) {
  EXPECT_EQ(stream_bytes("a\xF0\x9F\x9A"), (Pieces{"a", "", "", "", R}));
  EXPECT_EQ(stream_bytes("\xC3"), (Pieces{"", R}));
}

TEST(StreamDecoderUtf8, HandCasesMatchTheReference) {
  for (std::string_view s : {"\xC0\x80", "\xED\xA0\x80", "\xE6\x97" "A", "\xF0\x9F\x9A", "\x80", "\xF4\x90\x80\x80",
                             "\xE0\x80\xAF", "\xF1\x80\x80\xC3\xA9"}) {
    std::string joined;
    for (const std::string& p : stream_bytes(s)) joined += p;
    EXPECT_EQ(joined, decode_replacing(s)) << hex(s);
  }
}

TEST(StreamDecoderUtf8, ReferenceAgreesWithPython) {
  // Outputs of bytes.decode('utf-8', 'replace') in Python 3, copied here.
  EXPECT_EQ(decode_replacing("\xC0\x80"), R + R);
  EXPECT_EQ(decode_replacing("\xED\xA0\x80"), R + R + R);
  EXPECT_EQ(decode_replacing("\xF0\x9F\x9A" "A"), R + "A");
  EXPECT_EQ(decode_replacing("\xF1\x80\x80\xC3\xA9"), R + "\xC3\xA9");
  EXPECT_EQ(decode_replacing("\xF4\x90\x80\x80"), R + R + R + R);
  EXPECT_EQ(decode_replacing("\xE0\xA0"), R);
  EXPECT_EQ(decode_replacing("\xFF\xFE" "a"), R + R + "a");
}

}  // namespace
}  // namespace tessera::tok
