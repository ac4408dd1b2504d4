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

// Appends s to out as valid UTF-8: well-formed sequences as they are (Unicode Table 3-7: no
// overlongs, surrogates or values above U+10FFFF), each maximal invalid subpart (the longest prefix
// of a well-formed sequence, else one byte) as one U+FFFD, like Python's
// bytes.decode('utf-8', 'replace'). A sequence cut off by the end of s is left unread, unless
// at_end, when it becomes U+FFFD too. Returns the number of bytes of s consumed.
size_t append_valid_utf8(std::string& out, std::string_view s, bool at_end);

}  // namespace tessera::tok
