// Pre-tokenizer split rules (see pretokenize.h): one matcher per regex building block.
#include "tokenizer/pretokenize.h"

#include "tokenizer/unicode.h"

namespace tessera::tok {

namespace {

using R = SplitRule;

const std::vector<PreTokenizer>& table() {
  static const std::vector<PreTokenizer> t = {
      // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
      {"qwen2", {R::kContractionsAnyCase, R::kLettersAnyPrefix, R::kNumber1, R::kSpaceOtherNewlines,
                 R::kSpacesNewlines, R::kSpacesNotBeforeText, R::kSpaces}},
      {"deepseek-r1-qwen", {R::kContractionsAnyCase, R::kLettersAnyPrefix, R::kNumber1, R::kSpaceOtherNewlines,
                            R::kSpacesNewlines, R::kSpacesNotBeforeText, R::kSpaces}},
      // Same with \p{N}{1,3}.
      {"llama3", {R::kContractionsAnyCase, R::kLettersAnyPrefix, R::kNumber3, R::kSpaceOtherNewlines,
                  R::kSpacesNewlines, R::kSpacesNotBeforeText, R::kSpaces}},
      {"llama-bpe", {R::kContractionsAnyCase, R::kLettersAnyPrefix, R::kNumber3, R::kSpaceOtherNewlines,
                     R::kSpacesNewlines, R::kSpacesNotBeforeText, R::kSpaces}},
      // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
      {"gpt2", {R::kContractions, R::kSpaceLetters, R::kSpaceNumbers, R::kSpaceOther,
                R::kSpacesNotBeforeText, R::kSpaces}},
  };
  return t;
}

inline bool is_newline(uint32_t cp) { return cp == '\r' || cp == '\n'; }
inline uint32_t ascii_lower(uint32_t cp) { return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp; }

// Matches one alternative at position i; returns the end of the match, or i when it fails.
struct Matcher {
  std::span<const uint32_t> cp;
  std::span<const uint8_t> cl;
  size_t n;

  size_t run(size_t i, uint8_t c) const {  // end of the run of class c starting at i
    while (i < n && cl[i] == c) ++i;
    return i;
  }
  size_t newlines(size_t i) const {
    while (i < n && is_newline(cp[i])) ++i;
    return i;
  }

  size_t contraction(size_t i, bool any_case) const {
    if (cp[i] != '\'' || i + 1 >= n) return i;
    const auto low = [&](size_t k) { return any_case ? ascii_lower(cp[k]) : cp[k]; };
    const uint32_t a = low(i + 1);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    if (i + 2 < n) {
      const uint32_t b = low(i + 2);
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    }
    return i;
  }

  size_t match(R rule, size_t i) const {
    switch (rule) {
      case R::kContractions: return contraction(i, false);
      case R::kContractionsAnyCase: return contraction(i, true);
      case R::kLettersAnyPrefix:
        if (cl[i] == kLetter) return run(i, kLetter);
        if (cl[i] != kNumber && !is_newline(cp[i]) && i + 1 < n && cl[i + 1] == kLetter) return run(i + 1, kLetter);
        return i;
      case R::kSpaceLetters: {
        const size_t j = (cp[i] == ' ') ? i + 1 : i;
        return (j < n && cl[j] == kLetter) ? run(j, kLetter) : i;
      }
      case R::kNumber1: return cl[i] == kNumber ? i + 1 : i;
      case R::kNumber3: {
        size_t j = i;
        while (j < n && j - i < 3 && cl[j] == kNumber) ++j;
        return j;
      }
      case R::kSpaceNumbers: {
        const size_t j = (cp[i] == ' ') ? i + 1 : i;
        return (j < n && cl[j] == kNumber) ? run(j, kNumber) : i;
      }
      case R::kSpaceOtherNewlines:
      case R::kSpaceOther: {
        const size_t j = (cp[i] == ' ') ? i + 1 : i;
        if (j >= n || cl[j] != kOther) return i;
        const size_t k = run(j, kOther);
        return rule == R::kSpaceOtherNewlines ? newlines(k) : k;
      }
      case R::kSpacesNewlines: {
        // Greedy \s* gives back until [\r\n]+ fits: the match ends after the run's last newline.
        if (cl[i] != kSpace) return i;
        const size_t j = run(i, kSpace);
        for (size_t k = j; k > i; --k)
          if (is_newline(cp[k - 1])) return k;
        return i;
      }
      case R::kSpacesNotBeforeText: {
        if (cl[i] != kSpace) return i;
        const size_t j = run(i, kSpace);
        if (j == n) return j;
        return j - 1 > i ? j - 1 : i;  // leave the last space to the text that follows
      }
      case R::kSpaces: return cl[i] == kSpace ? run(i, kSpace) : i;
    }
    return i;
  }
};

}  // namespace

const PreTokenizer* find_pre_tokenizer(std::string_view name) {
  for (const auto& p : table())
    if (p.name == name) return &p;
  return nullptr;
}

std::vector<std::string_view> pre_tokenizer_names() {
  std::vector<std::string_view> names;
  for (const auto& p : table()) names.push_back(p.name);
  return names;
}

void pre_tokenize(const PreTokenizer& pre, std::span<const uint32_t> cps, std::span<const uint8_t> cls,
                  std::vector<uint32_t>& ends) {
  const Matcher m{cps, cls, cps.size()};
  size_t i = 0;
  while (i < m.n) {
    size_t end = i;
    for (const R rule : pre.rules) {
      end = m.match(rule, i);
      if (end > i) break;
    }
    if (end == i) end = i + 1;  // nothing matched (cannot happen for the full rule sets): one code point
    ends.push_back(static_cast<uint32_t>(end));
    i = end;
  }
}

}  // namespace tessera::tok
