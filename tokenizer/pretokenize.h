// Pre-tokenizers: the regex splits of byte-level BPE models, written as hand-made matchers over
// code points. Each pre-tokenizer is a table entry: an ordered list of alternatives, tried in order
// at every position like the regex alternation it stands for (first alternative that matches wins).
#pragma once
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace tessera::tok {

// The building blocks found in the GPT-2 family of split regexes.
enum class SplitRule : uint8_t {
  kContractions,         // 's|'t|'re|'ve|'m|'ll|'d               (case-sensitive)
  kContractionsAnyCase,  // (?i:'s|'t|'re|'ve|'m|'ll|'d)         (ASCII case-insensitive)
  kLettersAnyPrefix,     // [^\r\n\p{L}\p{N}]?\p{L}+
  kSpaceLetters,         // ' ?\p{L}+'
  kNumber1,              // \p{N}
  kNumber3,              // \p{N}{1,3}
  kSpaceNumbers,         // ' ?\p{N}+'
  kSpaceOtherNewlines,   // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
  kSpaceOther,           // ' ?[^\s\p{L}\p{N}]+'
  kSpacesNewlines,       // \s*[\r\n]+
  kSpacesNotBeforeText,  // \s+(?!\S)
  kSpaces,               // \s+
};

struct PreTokenizer {
  std::string_view name;
  std::vector<SplitRule> rules;
};

// nullptr for an unknown name. Known: qwen2 (and deepseek-r1-qwen), llama3 (llama-bpe), gpt2.
const PreTokenizer* find_pre_tokenizer(std::string_view name);
std::vector<std::string_view> pre_tokenizer_names();

// Splits code points into pieces. cps/cls: the code points of one text fragment and their
// classes (cp_class). Appends the end index (exclusive, in code points) of every piece to `ends`.
void pre_tokenize(const PreTokenizer& pre, std::span<const uint32_t> cps, std::span<const uint8_t> cls,
                  std::vector<uint32_t>& ends);

}  // namespace tessera::tok
