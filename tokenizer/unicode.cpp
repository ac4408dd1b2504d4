// UTF-8 decoding and code point classes (ICU u_charType / u_isUWhiteSpace).
#include "tokenizer/unicode.h"

#include <algorithm>
#include <array>

#include <unicode/uchar.h>

namespace tessera::tok {

namespace {

CpClass classify_with_icu(uint32_t cp) {
  const auto c = static_cast<UChar32>(cp);
  if (u_isUWhiteSpace(c)) return kSpace;
  switch (u_charType(c)) {
    case U_UPPERCASE_LETTER:
    case U_LOWERCASE_LETTER:
    case U_TITLECASE_LETTER:
    case U_MODIFIER_LETTER:
    case U_OTHER_LETTER:
      return kLetter;
    case U_DECIMAL_DIGIT_NUMBER:
    case U_LETTER_NUMBER:
    case U_OTHER_NUMBER:
      return kNumber;
    case U_CONNECTOR_PUNCTUATION:
    case U_DASH_PUNCTUATION:
    case U_START_PUNCTUATION:
    case U_END_PUNCTUATION:
    case U_INITIAL_PUNCTUATION:
    case U_FINAL_PUNCTUATION:
    case U_OTHER_PUNCTUATION:
      return kPunct;
    case U_MATH_SYMBOL:
    case U_CURRENCY_SYMBOL:
    case U_MODIFIER_SYMBOL:
    case U_OTHER_SYMBOL:
      return kSymbol;
    case U_NON_SPACING_MARK:
    case U_COMBINING_SPACING_MARK:
    case U_ENCLOSING_MARK:
      return kMark;
    default:
      return kOther;
  }
}

// Latin-1 answers come from a table (ASCII and Latin-1 are most of source code).
const std::array<CpClass, 256> kLatin1 = [] {
  std::array<CpClass, 256> t{};
  for (uint32_t c = 0; c < 256; ++c) t[c] = classify_with_icu(c);
  return t;
}();

}  // namespace

CpClass cp_class(uint32_t cp) {
  if (cp < 256) return kLatin1[cp];
  if (cp > 0x10FFFF) return kOther;
  return classify_with_icu(cp);
}

uint32_t next_code_point(std::string_view s, size_t& i, bool* irregular) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t b0 = byte(i);
  const int len = utf8_sequence_length(b0);
  if (len == 1) {
    ++i;
    return b0;
  }
  bool ok = len != 0 && i + len <= s.size();
  for (int k = 1; ok && k < len; ++k) ok = (byte(i + k) & 0xC0) == 0x80;
  if (!ok) {
    ++i;
    if (irregular) *irregular = true;
    return 0xFFFD;
  }
  uint32_t cp = len == 2 ? (b0 & 0x1F) : len == 3 ? (b0 & 0x0F) : (b0 & 0x07);
  for (int k = 1; k < len; ++k) cp = (cp << 6) | (byte(i + k) & 0x3F);
  i += len;
  const int canonical = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  if (cp > 0x10FFFF) {
    if (irregular) *irregular = true;
    return 0xFFFD;
  }
  if (canonical != len && irregular) *irregular = true;
  return cp;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

size_t append_valid_utf8(std::string& out, std::string_view s, bool at_end) {
  size_t i = 0;
  while (i < s.size()) {
    const auto byte = [&](size_t k) { return static_cast<uint8_t>(s[i + k]); };
    // The lead byte gives the length and the range allowed for the second byte.
    const uint8_t b0 = byte(0);
    size_t len = 0;  // 0: a byte that never starts a sequence (80..C1, F5..FF)
    uint8_t lo = 0x80, hi = 0xBF;
    if (b0 < 0x80) {
      len = 1;
    } else if (b0 >= 0xC2 && b0 <= 0xDF) {
      len = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      len = 3;
      if (b0 == 0xE0) lo = 0xA0;  // overlong below
      if (b0 == 0xED) hi = 0x9F;  // surrogates above
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      len = 4;
      if (b0 == 0xF0) lo = 0x90;  // overlong below
      if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
    }
    size_t good = len > 0 ? 1 : 0;  // leading bytes that fit a well-formed sequence
    while (good < len && i + good < s.size() && byte(good) >= (good == 1 ? lo : 0x80) &&
           byte(good) <= (good == 1 ? hi : 0xBF))
      ++good;
    if (len > 0 && good == len) {
      out += s.substr(i, len);
      i += len;
    } else if (i + good == s.size() && !at_end) {
      break;  // cut off by the end: the next bytes may complete it
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD for the maximal subpart
      i += std::max<size_t>(good, 1);
    }
  }
  return i;
}

}  // namespace tessera::tok
