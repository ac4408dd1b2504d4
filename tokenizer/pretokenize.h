// Pre-tokenizers: the regex splits of byte-level BPE models, written as hand-made matchers over
// code points. Each pre-tokenizer is a table entry: one or more stages, each an ordered list of
// alternatives tried at every position like the regex alternation it stands for (the first that
// matches wins). A stage splits every piece of the previous stage; text no alternative matches
// stays a piece of its own (regex "isolated" splitting, as llama.cpp and HF tokenizers do).
#pragma once
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace tessera::tok {

// The building blocks found in the GPT-2 family of split regexes.
enum class SplitRule : uint8_t {
  kContractions,            // 's|'t|'re|'ve|'m|'ll|'d               (case-sensitive)
  kContractionsAnyCase,     // (?i:'s|'t|'re|'ve|'m|'ll|'d)         (ASCII case-insensitive)
  kLettersAnyPrefix,        // [^\r\n\p{L}\p{N}]?\p{L}+
  kSpaceLetters,            // ' ?\p{L}+'
  kNumber1,                 // \p{N}
  kNumber3,                 // \p{N}{1,3}
  kSpaceNumbers,            // ' ?\p{N}+'
  kSpaceOtherNewlines,      // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
  kSpaceOther,              // ' ?[^\s\p{L}\p{N}]+'
  kSpacesNewlines,          // \s*[\r\n]+
  kSpacesNotBeforeText,     // \s+(?!\S)
  kSpaces,                  // \s+
  kCjkKana,                 // [一-龥぀-ゟ゠-ヿ]+                        (deepseek-v3)
  kAsciiPunctLetters,       // [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+
  kLetterMarksAnyPrefix,    // [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+
  kSpacePunctSymNewlines,   // ' ?[\p{P}\p{S}]+[\r\n]*'
};

struct PreTokenizer {
  std::string_view name;
  std::vector<std::vector<SplitRule>> stages;
};

// nullptr for an unknown name. Known: qwen2 (and deepseek-r1-qwen), llama3 (llama-bpe), gpt2,
// deepseek-v3, smollm.
const PreTokenizer* find_pre_tokenizer(std::string_view name);
std::vector<std::string_view> pre_tokenizer_names();

// Splits code points into pieces. cps/cls: the code points of one text fragment and their
// classes (cp_class). Appends the end index (exclusive, in code points) of every piece to `ends`.
void pre_tokenize(const PreTokenizer& pre, std::span<const uint32_t> cps, std::span<const uint8_t> cls,
                  std::vector<uint32_t>& ends);

}  // namespace tessera::tok
