// UTF-8 decoding and the Unicode character classes the pre-tokenizers need (from ICU, so every
// code point of Unicode is classified by the library's data, not by hand-typed ranges).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tessera::tok {

// Class of a code point as the split rules see it: one bit, or none for "other" (controls,
// format characters, unassigned, ...). White_Space wins over the general category.
enum CpClass : uint8_t {
  kOther = 0,
  kLetter = 1,   // \p{L}: Lu Ll Lt Lm Lo
  kNumber = 2,   // \p{N}: Nd Nl No
  kSpace = 4,    // \s: the Unicode White_Space property (\t \n \v \f \r, U+0085, U+00A0, ...)
  kPunct = 8,    // \p{P}: Pc Pd Ps Pe Pi Pf Po
  kSymbol = 16,  // \p{S}: Sm Sc Sk So
  kMark = 32,    // \p{M}: Mn Mc Me
};

CpClass cp_class(uint32_t cp);

// Decodes one code point at s[i] and advances i. Lenient like llama.cpp: the lead byte decides the
// length, continuation bytes must be 10xxxxxx; anything else yields U+FFFD and advances one byte.
// Sets *irregular when the bytes consumed differ from the canonical encoding of the result
// (invalid bytes, overlong forms, values above U+10FFFF, which also become U+FFFD).
uint32_t next_code_point(std::string_view s, size_t& i, bool* irregular);

void append_utf8(std::string& out, uint32_t cp);

// Length of the sequence a lead byte announces: 1..4, or 0 for a continuation / invalid byte.
inline int utf8_sequence_length(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead < 0xC0) return 0;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  if (lead < 0xF8) return 4;
  return 0;
}

// Number of bytes at the end of `s` that start a UTF-8 sequence not yet complete (0 when the text
// ends on a whole sequence or on bytes that can never become valid).
size_t incomplete_utf8_tail(std::string_view s);

}  // namespace tessera::tok
