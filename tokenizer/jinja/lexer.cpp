// Jinja lexer: splits a template into text and tag tokens, applying Hugging Face's whitespace
// rules (trim_blocks, lstrip_blocks, '-' / '+' modifiers, trailing newline dropped).
#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "tokenizer/jinja/ast.h"
#include "tokenizer/unicode.h"

namespace tessera::tok::jinja {

namespace {

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

class Lexer {
 public:
  explicit Lexer(std::string src) : src_(std::move(src)) {}

  std::vector<Token> run() {
    size_t pos = 0;
    bool line_starting = true;
    while (pos < src_.size()) {
      const size_t tag = find_tag(pos);
      std::string text = src_.substr(pos, (tag == std::string::npos ? src_.size() : tag) - pos);
      if (tag == std::string::npos) {
        emit_text(std::move(text), pos);
        break;
      }
      const char kind = src_[tag + 1];  // '{', '%' or '#'
      const char sign = tag + 2 < src_.size() ? src_[tag + 2] : 0;
      if (sign == '-') {
        size_t e = text.size();
        while (e > 0 && is_ws(text[e - 1])) --e;
        text.resize(e);
      } else if (sign != '+' && kind != '{') {  // lstrip_blocks
        const size_t nl = text.rfind('\n');
        const size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
        if ((l_pos > 0 || line_starting) && l_pos < text.size()) {
          bool blank = true;
          for (size_t k = l_pos; k < text.size() && blank; ++k) blank = is_ws(text[k]);
          if (blank) text.resize(l_pos);
        }
      }
      emit_text(std::move(text), pos);
      size_t p = tag + 2 + ((sign == '-' || sign == '+') ? 1 : 0);
      if (kind == '#') {
        const size_t end = src_.find("#}", p);
        if (end == std::string::npos) throw_error("chat template line {}: unterminated comment", line_at(tag));
        const char end_sign = end > p ? src_[end - 1] : 0;
        pos = after_tag_end(end + 2, end_sign, true);
      } else {
        pos = lex_tag(p, kind == '{', tag);
      }
      line_starting = pos > 0 && src_[pos - 1] == '\n';
    }
    tokens_.push_back({Token::Kind::End, "", line_at(src_.size())});
    return std::move(tokens_);
  }

 private:
  std::string src_;
  std::vector<Token> tokens_;

  // Line of a byte offset; offsets are asked for mostly in increasing order, so count on from the
  // last answer.
  mutable size_t line_pos_ = 0;
  mutable int line_ = 1;
  int line_at(size_t pos) const {
    pos = std::min(pos, src_.size());
    if (pos < line_pos_) {
      line_pos_ = 0;
      line_ = 1;
    }
    for (; line_pos_ < pos; ++line_pos_) line_ += src_[line_pos_] == '\n';
    return line_;
  }

  size_t find_tag(size_t from) const {
    for (size_t p = src_.find('{', from); p != std::string::npos; p = src_.find('{', p + 1)) {
      if (p + 1 < src_.size() && (src_[p + 1] == '{' || src_[p + 1] == '%' || src_[p + 1] == '#')) return p;
    }
    return std::string::npos;
  }

  void emit_text(std::string text, size_t pos) {
    if (!text.empty()) tokens_.push_back({Token::Kind::Text, std::move(text), line_at(pos)});
  }

  // After a tag's closing marker: '-' strips all following whitespace; otherwise block and
  // comment tags drop one newline (trim_blocks) unless marked '+'.
  size_t after_tag_end(size_t p, char end_sign, bool block) const {
    if (end_sign == '-') {
      while (p < src_.size() && is_ws(src_[p])) ++p;
    } else if (block && end_sign != '+' && p < src_.size() && src_[p] == '\n') {
      ++p;
    }
    return p;
  }

  size_t lex_tag(size_t p, bool is_var, size_t tag_start) {
    tokens_.push_back({is_var ? Token::Kind::VarBegin : Token::Kind::BlockBegin, "", line_at(tag_start)});
    const char* close = is_var ? "}}" : "%}";
    int depth = 0;  // open brackets: a closing marker inside them is an operator
    while (true) {
      while (p < src_.size() && is_ws(src_[p])) ++p;
      if (p >= src_.size()) throw_error("chat template line {}: tag not closed", line_at(tag_start));
      const int line = line_at(p);
      if (depth == 0) {
        for (const char sign : {'-', '+', '\0'}) {
          const size_t q = sign ? p + 1 : p;
          if ((sign == 0 || src_[p] == sign) && src_.compare(q, 2, close) == 0) {
            tokens_.push_back({is_var ? Token::Kind::VarEnd : Token::Kind::BlockEnd, "", line});
            return after_tag_end(q + 2, sign, !is_var);
          }
        }
      }
      const char c = src_[p];
      if (is_name_start(c)) {
        size_t e = p;
        while (e < src_.size() && (is_name_start(src_[e]) || is_digit(src_[e]))) ++e;
        tokens_.push_back({Token::Kind::Name, src_.substr(p, e - p), line});
        p = e;
      } else if (is_digit(c)) {
        p = lex_number(p, line);
      } else if (c == '\'' || c == '"') {
        p = lex_string(p, line);
      } else {
        static const char* const two[] = {"//", "**", "==", "!=", ">=", "<="};
        std::string op;
        for (const char* t : two)
          if (src_.compare(p, 2, t) == 0) op = t;
        if (op.empty()) {
          if (!std::strchr("+-/*%~[](){}|.,:;=<>", c))
            throw_error("chat template line {}: unexpected character '{}'", line, std::string(1, c));
          op = std::string(1, c);
          if (c == '(' || c == '[' || c == '{') ++depth;
          if ((c == ')' || c == ']' || c == '}') && depth > 0) --depth;
        }
        tokens_.push_back({Token::Kind::Op, op, line});
        p += op.size();
      }
    }
  }

  size_t lex_number(size_t p, int line) {
    size_t e = p;
    while (e < src_.size() && (is_digit(src_[e]) || src_[e] == '_')) ++e;
    bool is_float = false;
    if (e + 1 < src_.size() && src_[e] == '.' && is_digit(src_[e + 1])) {
      is_float = true;
      ++e;
      while (e < src_.size() && (is_digit(src_[e]) || src_[e] == '_')) ++e;
    }
    if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
      size_t k = e + 1;
      if (k < src_.size() && (src_[k] == '+' || src_[k] == '-')) ++k;
      if (k < src_.size() && is_digit(src_[k])) {
        is_float = true;
        e = k;
        while (e < src_.size() && is_digit(src_[e])) ++e;
      }
    }
    std::string text;
    for (size_t k = p; k < e; ++k)
      if (src_[k] != '_') text += src_[k];
    tokens_.push_back({is_float ? Token::Kind::Float : Token::Kind::Int, text, line});
    return e;
  }

  static int hex(char c) {
    return (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
  }

  size_t lex_string(size_t p, int line) {
    const char q = src_[p];
    std::string out;
    size_t k = p + 1;
    while (true) {
      if (k >= src_.size()) throw_error("chat template line {}: unterminated string", line);
      const char c = src_[k];
      if (c == q) break;
      if (c != '\\' || k + 1 >= src_.size()) {
        out += c;
        ++k;
        continue;
      }
      const char e = src_[k + 1];
      k += 2;
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case '0': out += '\0'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case '\n': break;  // line continuation
        case 'x':
        case 'u':
        case 'U': {
          const int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          uint32_t cp = 0;
          for (int d = 0; d < digits; ++d) {
            const int h = k < src_.size() ? hex(src_[k]) : -1;
            if (h < 0) throw_error("chat template line {}: bad \\{} escape in a string", line, std::string(1, e));
            cp = cp * 16 + static_cast<uint32_t>(h);
            ++k;
          }
          append_utf8(out, cp);
          break;
        }
        default:  // unknown escapes keep their backslash, like Python
          out += '\\';
          out += e;
      }
    }
    tokens_.push_back({Token::Kind::String, std::move(out), line});
    return k + 1;
  }
};

}  // namespace

std::vector<Token> lex(std::string_view source) {
  std::string src;
  src.reserve(source.size());
  for (size_t k = 0; k < source.size(); ++k) {  // \r\n and \r become \n
    if (source[k] == '\r') {
      src += '\n';
      if (k + 1 < source.size() && source[k + 1] == '\n') ++k;
    } else {
      src += source[k];
    }
  }
  if (!src.empty() && src.back() == '\n') src.pop_back();  // keep_trailing_newline=False
  return Lexer(std::move(src)).run();
}

}  // namespace tessera::tok::jinja
