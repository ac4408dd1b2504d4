// Jinja values with Python semantics (see value.h).
#include "tokenizer/jinja/value.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include <unicode/uchar.h>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace tessera::tok::jinja {

Value Value::make_list(List items, bool tuple) {
  Value v;
  v.type = Type::List;
  v.list = std::make_shared<List>(std::move(items));
  v.is_tuple = tuple;
  return v;
}

Value Value::make_dict() {
  Value v;
  v.type = Type::Dict;
  v.dict = std::make_shared<Dict>();
  return v;
}

Value Value::make_namespace() {
  Value v = make_dict();
  v.type = Type::Namespace;
  return v;
}

Value Value::function(std::string name, std::function<Value(std::vector<Value>&, std::vector<std::pair<std::string, Value>>&)> f) {
  Value v;
  v.type = Type::Callable;
  v.fn = std::make_shared<Callable>(Callable{std::move(name), std::move(f)});
  return v;
}

bool Value::truthy() const {
  switch (type) {
    case Type::Undefined:
    case Type::None: return false;
    case Type::Bool: return b;
    case Type::Int: return i != 0;
    case Type::Float: return f != 0;
    case Type::String: return !s.empty();
    case Type::List: return !list->empty();
    case Type::Dict: return !dict->items.empty();
    case Type::Namespace:
    case Type::Callable: return true;
  }
  return false;
}

std::string Value::type_name() const {
  switch (type) {
    case Type::Undefined: return "undefined";
    case Type::None: return "NoneType";
    case Type::Bool: return "bool";
    case Type::Int: return "int";
    case Type::Float: return "float";
    case Type::String: return "str";
    case Type::List: return is_tuple ? "tuple" : "list";
    case Type::Dict: return "dict";
    case Type::Namespace: return "Namespace";
    case Type::Callable: return "function";
  }
  return "?";
}

const Value* Dict::find(std::string_view key) const {
  for (const auto& [k, v] : items)
    if (k == key) return &v;
  return nullptr;
}

void Dict::set(const std::string& key, Value v) {
  for (auto& [k, old] : items)
    if (k == key) {
      old = std::move(v);
      return;
    }
  items.emplace_back(key, std::move(v));
}

namespace {

Value from_json_at(const nlohmann::ordered_json& j, int depth) {
  using J = nlohmann::ordered_json::value_t;
  if (depth > 256) throw_error("chat template: context JSON nested deeper than 256 levels");
  switch (j.type()) {
    case J::null: return Value::none();
    case J::boolean: return Value::boolean(j.get<bool>());
    case J::number_integer: return Value::integer(j.get<int64_t>());
    case J::number_unsigned: return Value::integer(static_cast<int64_t>(j.get<uint64_t>()));
    case J::number_float: return Value::number(j.get<double>());
    case J::string: return Value::string(j.get<std::string>());
    case J::array: {
      List items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(from_json_at(e, depth + 1));
      return Value::make_list(std::move(items));
    }
    case J::object: {
      Value d = Value::make_dict();
      for (const auto& [k, e] : j.items()) d.dict->items.emplace_back(k, from_json_at(e, depth + 1));
      return d;
    }
    default: throw_error("chat template: unsupported JSON value of type '{}' in the context", j.type_name());
  }
}

}  // namespace

Value from_json(const nlohmann::ordered_json& j) { return from_json_at(j, 0); }

std::string python_float_repr(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  // Shortest round-trip digits, then Python's layout: scientific when exp < -4 or exp >= 16.
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::scientific);
  std::string sci(buf, r.ptr);
  const size_t e = sci.find('e');
  std::string mant = sci.substr(0, e);
  const int exp = std::stoi(sci.substr(e + 1));
  bool neg = false;
  if (!mant.empty() && mant[0] == '-') {
    neg = true;
    mant.erase(0, 1);
  }
  std::string digits;
  for (char c : mant)
    if (c != '.') digits += c;
  std::string out;
  if (exp < -4 || exp >= 16) {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    out += eb;
  } else if (exp < 0) {
    out = "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
  } else {
    const auto int_len = static_cast<size_t>(exp + 1);
    if (digits.size() <= int_len) {
      out = digits + std::string(int_len - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, int_len) + "." + digits.substr(int_len);
    }
  }
  return neg ? "-" + out : out;
}

namespace {

std::string repr_string(std::string_view s) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char q = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, q);
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == q || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7F) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", u);
      out += b;
    } else {
      out += c;
    }
  }
  out += q;
  return out;
}

void json_string(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (u < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", u);
          out += b;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

void json_dump(std::string& out, const Value& v, int indent, int depth) {
  if (depth > 512) throw_error("chat template: tojson of a value nested deeper than 512 levels");
  const auto newline = [&](int d) {
    out += '\n';
    out.append(static_cast<size_t>(indent * d), ' ');
  };
  const char* item_sep = indent >= 0 ? "," : ", ";
  switch (v.type) {
    case Value::Type::Undefined: throw_error("chat template: tojson of an undefined value ('{}')", v.s);
    case Value::Type::None: out += "null"; return;
    case Value::Type::Bool: out += v.b ? "true" : "false"; return;
    case Value::Type::Int: out += std::to_string(v.i); return;
    case Value::Type::Float:
      out += std::isnan(v.f) ? "NaN" : std::isinf(v.f) ? (v.f > 0 ? "Infinity" : "-Infinity") : python_float_repr(v.f);
      return;
    case Value::Type::String: json_string(out, v.s); return;
    case Value::Type::List:
      if (v.list->empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t k = 0; k < v.list->size(); ++k) {
        if (k) out += item_sep;
        if (indent >= 0) newline(depth + 1);
        json_dump(out, (*v.list)[k], indent, depth + 1);
      }
      if (indent >= 0) newline(depth);
      out += ']';
      return;
    case Value::Type::Dict:
    case Value::Type::Namespace:
      if (v.dict->items.empty()) {
        out += "{}";
        return;
      }
      out += '{';
      for (size_t k = 0; k < v.dict->items.size(); ++k) {
        if (k) out += item_sep;
        if (indent >= 0) newline(depth + 1);
        json_string(out, v.dict->items[k].first);
        out += ": ";
        json_dump(out, v.dict->items[k].second, indent, depth + 1);
      }
      if (indent >= 0) newline(depth);
      out += '}';
      return;
    case Value::Type::Callable: throw_error("chat template: tojson of a function ('{}')", v.fn->name);
  }
}

}  // namespace

namespace {
thread_local int repr_depth = 0;  // guards against values nested absurdly deep
}

std::string to_repr(const Value& v) {
  struct Guard {
    Guard() {
      if (++repr_depth > 512) {
        --repr_depth;
        throw_error("chat template: printing a value nested deeper than 512 levels");
      }
    }
    ~Guard() { --repr_depth; }
  } guard;
  switch (v.type) {
    case Value::Type::String: return repr_string(v.s);
    case Value::Type::Undefined: return "";
    case Value::Type::List: {
      std::string out = v.is_tuple ? "(" : "[";
      for (size_t k = 0; k < v.list->size(); ++k) out += (k ? ", " : "") + to_repr((*v.list)[k]);
      if (v.is_tuple && v.list->size() == 1) out += ",";
      return out + (v.is_tuple ? ")" : "]");
    }
    case Value::Type::Dict:
    case Value::Type::Namespace: {
      std::string out = v.type == Value::Type::Namespace ? "<Namespace {" : "{";
      for (size_t k = 0; k < v.dict->items.size(); ++k)
        out += (k ? ", " : "") + repr_string(v.dict->items[k].first) + ": " + to_repr(v.dict->items[k].second);
      return out + (v.type == Value::Type::Namespace ? "}>" : "}");
    }
    default: return to_str(v);
  }
}

std::string to_str(const Value& v) {
  switch (v.type) {
    case Value::Type::Undefined: return "";
    case Value::Type::None: return "None";
    case Value::Type::Bool: return v.b ? "True" : "False";
    case Value::Type::Int: return std::to_string(v.i);
    case Value::Type::Float: return python_float_repr(v.f);
    case Value::Type::String: return v.s;
    case Value::Type::Callable: return "<function " + v.fn->name + ">";
    default: return to_repr(v);
  }
}

std::string to_json(const Value& v, int indent) {
  std::string out;
  json_dump(out, v, indent, 0);
  return out;
}

bool equal(const Value& a, const Value& b) {
  const bool an = a.is_number() || a.type == Value::Type::Bool, bn = b.is_number() || b.type == Value::Type::Bool;
  if (an && bn) {
    if (a.type != Value::Type::Float && b.type != Value::Type::Float) {
      const int64_t x = a.type == Value::Type::Bool ? a.b : a.i, y = b.type == Value::Type::Bool ? b.b : b.i;
      return x == y;
    }
    return a.as_double() == b.as_double();
  }
  if (a.type != b.type) return false;
  switch (a.type) {
    case Value::Type::Undefined:
    case Value::Type::None: return true;
    case Value::Type::String: return a.s == b.s;
    case Value::Type::List:
      if (a.list->size() != b.list->size()) return false;
      for (size_t k = 0; k < a.list->size(); ++k)
        if (!equal((*a.list)[k], (*b.list)[k])) return false;
      return true;
    case Value::Type::Dict:
    case Value::Type::Namespace:
      if (a.dict->items.size() != b.dict->items.size()) return false;
      for (const auto& [k, x] : a.dict->items) {
        const Value* y = b.dict->find(k);
        if (!y || !equal(x, *y)) return false;
      }
      return true;
    case Value::Type::Callable: return a.fn == b.fn;
    default: return false;
  }
}

int compare(const Value& a, const Value& b) {
  const bool an = a.is_number() || a.type == Value::Type::Bool, bn = b.is_number() || b.type == Value::Type::Bool;
  if (an && bn) {
    const double x = a.as_double(), y = b.as_double();
    if (a.type == Value::Type::Int && b.type == Value::Type::Int) return a.i < b.i ? -1 : a.i > b.i ? 1 : 0;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) return a.s.compare(b.s) < 0 ? -1 : a.s == b.s ? 0 : 1;
  if (a.is_list() && b.is_list()) {
    const size_t n = std::min(a.list->size(), b.list->size());
    for (size_t k = 0; k < n; ++k)
      if (const int c = compare((*a.list)[k], (*b.list)[k]); c != 0) return c;
    return a.list->size() < b.list->size() ? -1 : a.list->size() > b.list->size() ? 1 : 0;
  }
  throw_error("chat template: cannot order '{}' and '{}'", a.type_name(), b.type_name());
}

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

std::vector<std::string_view> utf8_chars(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    const size_t start = i;
    next_code_point(s, i, nullptr);
    out.push_back(s.substr(start, i - start));
  }
  return out;
}

bool py_isspace(uint32_t cp) {
  // Python's str.isspace(): general category Zs, or bidirectional class WS, B or S.
  if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F);
  const auto c = static_cast<UChar32>(cp);
  if (u_charType(c) == U_SPACE_SEPARATOR) return true;
  const auto d = u_charDirection(c);
  return d == U_WHITE_SPACE_NEUTRAL || d == U_BLOCK_SEPARATOR || d == U_SEGMENT_SEPARATOR;
}

}  // namespace tessera::tok::jinja
