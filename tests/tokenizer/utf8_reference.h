// A reference UTF-8 decoder for the tests, written straight from the definitions in Unicode §3.9
// rather than from byte tables: a well-formed sequence is the shortest encoding of a scalar value;
// anything else becomes one U+FFFD per maximal subpart (the longest prefix of some well-formed
// sequence, or a single byte), which is what Python's bytes.decode('utf-8', 'replace') does.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>

namespace tessera::test {

inline const std::string kReplacement = "\xEF\xBF\xBD";  // U+FFFD

inline bool is_scalar_value(uint32_t cp) { return cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF); }

// The shortest UTF-8 form of cp (also of surrogates and values above U+10FFFF, never asked here).
inline std::string encode_utf8(uint32_t cp) {
  if (cp < 0x80) return std::string(1, static_cast<char>(cp));
  std::string tail;    // continuation bytes, built from the last one back
  uint32_t room = 0x3F;  // payload bits the lead byte could hold: 5, 4, then 3 after each shift
  uint8_t mark = 0x80;   // the lead byte's marker: C0, E0, then F0
  do {
    tail.insert(tail.begin(), static_cast<char>(0x80 | (cp & 0x3F)));
    cp >>= 6;
    room >>= 1;
    mark = static_cast<uint8_t>(0x80 | (mark >> 1));
  } while (cp > room);
  return static_cast<char>(mark | cp) + tail;
}

// Whether b is exactly the shortest encoding of one scalar value: take the payload bits each byte
// would carry, re-encode, and compare (wrong marker bits, overlongs, surrogates all fail).
inline bool well_formed_sequence(std::string_view b) {
  if (b.empty() || b.size() > 4) return false;
  const auto u = [&](size_t k) { return static_cast<uint8_t>(b[k]); };
  uint32_t cp = b.size() == 1 ? u(0) : u(0) & (0x7Fu >> b.size());
  for (size_t k = 1; k < b.size(); ++k) cp = cp << 6 | (u(k) & 0x3Fu);
  return is_scalar_value(cp) && encode_utf8(cp) == b;
}

// Every proper prefix of every well-formed sequence, by enumerating all scalar values.
inline const std::unordered_set<std::string>& proper_prefixes() {
  static const std::unordered_set<std::string> set = [] {
    std::unordered_set<std::string> s;
    for (uint32_t cp = 0x80; cp <= 0x10FFFF; ++cp) {
      if (!is_scalar_value(cp)) continue;
      const std::string e = encode_utf8(cp);
      for (size_t k = 1; k < e.size(); ++k) s.insert(e.substr(0, k));
    }
    return s;
  }();
  return set;
}

// bytes.decode('utf-8', 'replace').
inline std::string decode_replacing(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    size_t len = 0;
    for (size_t k = 1; k <= 4 && i + k <= s.size(); ++k)
      if (well_formed_sequence(s.substr(i, k))) len = k;
    if (len > 0) {
      out += s.substr(i, len);
      i += len;
      continue;
    }
    size_t bad = 1;  // the maximal subpart: at least one byte
    for (size_t k = 2; k <= 3 && i + k <= s.size(); ++k)
      if (proper_prefixes().count(std::string(s.substr(i, k)))) bad = k;
    out += kReplacement;
    i += bad;
  }
  return out;
}

inline bool valid_utf8(std::string_view s) { return decode_replacing(s) == s; }

}  // namespace tessera::test
