// Pre-tokenizer split rules (see pretokenize.h): one matcher per regex building block.
#include "tokenizer/pretokenize.h"

#include "tokenizer/unicode.h"

namespace tessera::tok {

namespace {

using R = SplitRule;

const std::vector<PreTokenizer>& table() {
  // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  static const std::vector<R> qwen2 = {R::kContractionsAnyCase, R::kLettersAnyPrefix, R::kNumber1, R::kSpaceOtherNewlines,
                                       R::kSpacesNewlines, R::kSpacesNotBeforeText, R::kSpaces};
  // The same with \p{N}{1,3}.
  static const std::vector<R> llama3 = {R::kContractionsAnyCase, R::kLettersAnyPrefix, R::kNumber3, R::kSpaceOtherNewlines,
                                        R::kSpacesNewlines, R::kSpacesNotBeforeText, R::kSpaces};
  // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  static const std::vector<R> gpt2 = {R::kContractions, R::kSpaceLetters, R::kSpaceNumbers, R::kSpaceOther,
                                      R::kSpacesNotBeforeText, R::kSpaces};
  // Three stages: \p{N}{1,3} ; [一-龥぀-ゟ゠-ヿ]+ ; [!"#...~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+|
  // ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  static const std::vector<std::vector<R>> deepseek_v3 = {
      {R::kNumber3},
      {R::kCjkKana},
      {R::kAsciiPunctLetters, R::kLetterMarksAnyPrefix, R::kSpacePunctSymNewlines, R::kSpacesNewlines,
       R::kSpacesNotBeforeText, R::kSpaces}};
  // Two stages (smollm, as llama.cpp's STARCODER group): \p{N} isolates every digit; then the GPT-2 split.
  static const std::vector<std::vector<R>> smollm = {{R::kNumber1}, gpt2};
  static const std::vector<PreTokenizer> t = {
      {"qwen2", {qwen2}}, {"deepseek-r1-qwen", {qwen2}}, {"llama3", {llama3}}, {"llama-bpe", {llama3}},
      {"gpt2", {gpt2}},   {"deepseek-v3", deepseek_v3}, {"smollm", smollm},
  };
  return t;
}

inline bool is_newline(uint32_t cp) { return cp == '\r' || cp == '\n'; }
inline uint32_t ascii_lower(uint32_t cp) { return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp; }
inline bool is_ascii_letter(uint32_t cp) { return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z'); }
inline bool is_ascii_punct(uint32_t cp) {
  return (cp >= '!' && cp <= '/') || (cp >= ':' && cp <= '@') || (cp >= '[' && cp <= '`') || (cp >= '{' && cp <= '~');
}
inline bool is_cjk_kana(uint32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FA5) || (cp >= 0x3040 && cp <= 0x309F) || (cp >= 0x30A0 && cp <= 0x30FF);
}

constexpr uint8_t kLNS = kLetter | kNumber | kSpace;  // "other" in [^\s\p{L}\p{N}] means none of these

// Matches one alternative at position i of the piece [.., n); returns the end of the match, or
// i when it fails. Lookahead stops at n, as a regex sees the end of its input there.
struct Matcher {
  std::span<const uint32_t> cp;
  std::span<const uint8_t> cl;
  size_t n;

  bool has(size_t i, uint8_t mask) const { return i < n && (cl[i] & mask) != 0; }
  size_t run(size_t i, uint8_t mask) const {  // end of the run of code points with a class in mask
    while (has(i, mask)) ++i;
    return i;
  }
  size_t run_without(size_t i, uint8_t mask) const {  // end of the run of code points with no class in mask
    while (i < n && (cl[i] & mask) == 0) ++i;
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

  // X?[body]+ where the optional X is any code point outside `not_prefix` and not \r \n.
  size_t body_with_prefix(size_t i, uint8_t body, uint8_t not_prefix) const {
    if (has(i, body)) return run(i, body);
    if (!has(i, not_prefix) && !is_newline(cp[i]) && has(i + 1, body)) return run(i + 1, body);
    return i;
  }

  size_t match(R rule, size_t i) const {
    switch (rule) {
      case R::kContractions: return contraction(i, false);
      case R::kContractionsAnyCase: return contraction(i, true);
      case R::kLettersAnyPrefix: return body_with_prefix(i, kLetter, kLetter | kNumber);
      case R::kLetterMarksAnyPrefix: return body_with_prefix(i, kLetter | kMark, kLetter | kPunct | kSymbol);
      case R::kSpaceLetters: {
        const size_t j = (cp[i] == ' ') ? i + 1 : i;
        return has(j, kLetter) ? run(j, kLetter) : i;
      }
      case R::kNumber1: return has(i, kNumber) ? i + 1 : i;
      case R::kNumber3: {
        size_t j = i;
        while (j - i < 3 && has(j, kNumber)) ++j;
        return j;
      }
      case R::kSpaceNumbers: {
        const size_t j = (cp[i] == ' ') ? i + 1 : i;
        return has(j, kNumber) ? run(j, kNumber) : i;
      }
      case R::kSpaceOtherNewlines:
      case R::kSpaceOther: {
        const size_t j = (cp[i] == ' ') ? i + 1 : i;
        if (j >= n || (cl[j] & kLNS) != 0) return i;
        const size_t k = run_without(j, kLNS);
        return rule == R::kSpaceOtherNewlines ? newlines(k) : k;
      }
      case R::kSpacePunctSymNewlines: {
        const size_t j = (cp[i] == ' ') ? i + 1 : i;
        return has(j, kPunct | kSymbol) ? newlines(run(j, kPunct | kSymbol)) : i;
      }
      case R::kSpacesNewlines: {
        // Greedy \s* gives back until [\r\n]+ fits: the match ends after the run's last newline.
        if (!has(i, kSpace)) return i;
        const size_t j = run(i, kSpace);
        for (size_t k = j; k > i; --k)
          if (is_newline(cp[k - 1])) return k;
        return i;
      }
      case R::kSpacesNotBeforeText: {
        if (!has(i, kSpace)) return i;
        const size_t j = run(i, kSpace);
        if (j == n) return j;
        return j - 1 > i ? j - 1 : i;  // leave the last space to the text that follows
      }
      case R::kSpaces: return run(i, kSpace);
      case R::kCjkKana: {
        size_t j = i;
        while (j < n && is_cjk_kana(cp[j])) ++j;
        return j;
      }
      case R::kAsciiPunctLetters:
        return (is_ascii_punct(cp[i]) && i + 1 < n && is_ascii_letter(cp[i + 1])) ? [&] {
          size_t j = i + 1;
          while (j < n && is_ascii_letter(cp[j])) ++j;
          return j;
        }() : i;
    }
    return i;
  }
};

// Splits [begin, end) with one stage's alternatives, appending piece ends.
void split_stage(const std::vector<R>& rules, std::span<const uint32_t> cps, std::span<const uint8_t> cls,
                 uint32_t begin, uint32_t end, std::vector<uint32_t>& ends) {
  const Matcher m{cps, cls, end};
  size_t i = begin;
  bool in_gap = false;  // code points no alternative matched, collected into one piece
  while (i < end) {
    size_t hit = i;
    for (const R rule : rules) {
      hit = m.match(rule, i);
      if (hit > i) break;
    }
    if (hit == i) {
      in_gap = true;
      ++i;
      continue;
    }
    if (in_gap) ends.push_back(static_cast<uint32_t>(i));
    in_gap = false;
    ends.push_back(static_cast<uint32_t>(hit));
    i = hit;
  }
  if (in_gap) ends.push_back(end);
}

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
  const auto n = static_cast<uint32_t>(cps.size());
  if (n == 0) return;
  if (pre.stages.size() == 1) {  // the common case: no intermediate pieces
    split_stage(pre.stages[0], cps, cls, 0, n, ends);
    return;
  }
  std::vector<uint32_t> pieces = {n}, next;
  for (const auto& stage : pre.stages) {
    next.clear();
    uint32_t start = 0;
    for (const uint32_t e : pieces) {
      split_stage(stage, cps, cls, start, e, next);
      start = e;
    }
    pieces.swap(next);
  }
  ends.insert(ends.end(), pieces.begin(), pieces.end());
}

}  // namespace tessera::tok
