// Jinja built-ins (see builtins.h), with Python's behaviour for the str / dict methods.
#include "tokenizer/jinja/builtins.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>

#include <unicode/uchar.h>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace tessera::tok::jinja {

namespace {

[[noreturn]] void fail(int line, const std::string& msg) { throw_error("chat template line {}: {}", line, msg); }

const Value* kwarg(const Kwargs& kw, std::string_view name) {
  for (const auto& [k, v] : kw)
    if (k == name) return &v;
  return nullptr;
}

// Positional argument k, else keyword `name`, else fallback.
Value arg(const Args& a, const Kwargs& kw, size_t k, std::string_view name, Value fallback = Value::undefined()) {
  if (k < a.size()) return a[k];
  if (const Value* v = kwarg(kw, name)) return *v;
  return fallback;
}

std::string need_str(const Value& v, int line, std::string_view what) {
  if (!v.is_string()) fail(line, fmt::format("{} needs a string, got {}", what, v.type_name()));
  return v.s;
}

int64_t need_int(const Value& v, int line, std::string_view what) {
  if (v.type == Value::Type::Int) return v.i;
  if (v.type == Value::Type::Bool) return v.b;
  fail(line, fmt::format("{} needs an integer, got {}", what, v.type_name()));
}

bool is_space_cp(uint32_t cp) { return py_isspace(cp); }

std::vector<uint32_t> code_points(std::string_view s) {
  std::vector<uint32_t> cps;
  for (size_t i = 0; i < s.size();) cps.push_back(next_code_point(s, i, nullptr));
  return cps;
}

std::string from_code_points(const std::vector<uint32_t>& cps, size_t b, size_t e) {
  std::string out;
  for (size_t k = b; k < e; ++k) append_utf8(out, cps[k]);
  return out;
}

Value str_split(const std::string& s, const Value& sep_v, int64_t maxsplit, int line) {
  List parts;
  if (sep_v.is_undefined() || sep_v.is_none()) {  // runs of whitespace, no empty strings
    const auto cps = code_points(s);
    size_t k = 0;
    while (k < cps.size()) {
      while (k < cps.size() && is_space_cp(cps[k])) ++k;
      if (k >= cps.size()) break;
      if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
        size_t e = cps.size();
        while (e > k && is_space_cp(cps[e - 1])) --e;
        parts.push_back(Value::string(from_code_points(cps, k, e)));
        break;
      }
      size_t e = k;
      while (e < cps.size() && !is_space_cp(cps[e])) ++e;
      parts.push_back(Value::string(from_code_points(cps, k, e)));
      k = e;
    }
    return Value::make_list(std::move(parts));
  }
  const std::string sep = need_str(sep_v, line, "split()");
  if (sep.empty()) fail(line, "split(): empty separator");
  size_t pos = 0;
  while (true) {
    const size_t hit = s.find(sep, pos);
    if (hit == std::string::npos || (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit)) {
      parts.push_back(Value::string(s.substr(pos)));
      break;
    }
    parts.push_back(Value::string(s.substr(pos, hit - pos)));
    pos = hit + sep.size();
  }
  return Value::make_list(std::move(parts));
}

std::string str_replace(const std::string& s, const std::string& from, const std::string& to, int64_t count) {
  std::string out;
  if (from.empty()) {  // Python inserts `to` between every character
    const auto chars = utf8_chars(s);
    int64_t done = 0;
    for (auto c : chars) {
      if (count < 0 || done < count) {
        out += to;
        ++done;
      }
      out += c;
    }
    if (count < 0 || done < count) out += to;
    return out;
  }
  size_t pos = 0;
  int64_t done = 0;
  while (true) {
    const size_t hit = s.find(from, pos);
    if (hit == std::string::npos || (count >= 0 && done >= count)) break;
    out.append(s, pos, hit - pos);
    out += to;
    pos = hit + from.size();
    ++done;
  }
  out.append(s, pos);
  return out;
}

std::string case_map(std::string_view s, int mode) {  // 0 lower, 1 upper (ASCII and Latin via ICU)
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const uint32_t cp = next_code_point(s, i, nullptr);
    append_utf8(out, static_cast<uint32_t>(mode == 0 ? u_tolower(static_cast<UChar32>(cp)) : u_toupper(static_cast<UChar32>(cp))));
  }
  return out;
}

std::string title_case(std::string_view s, bool only_first) {
  std::string out;
  bool start = true;
  for (size_t i = 0; i < s.size();) {
    const uint32_t cp = next_code_point(s, i, nullptr);
    const auto c = static_cast<UChar32>(cp);
    const bool alpha = u_isalpha(c);
    if (only_first) {
      append_utf8(out, static_cast<uint32_t>(start ? u_totitle(c) : u_tolower(c)));
      start = false;
    } else {
      append_utf8(out, static_cast<uint32_t>(alpha ? (start ? u_totitle(c) : u_tolower(c)) : c));
      start = !alpha;
    }
  }
  return out;
}

Value bound(const std::string& name, std::function<Value(Args&, Kwargs&)> f) {
  return Value::function(name, [f = std::move(f)](Args& a, Kwargs& kw) { return f(a, kw); });
}

Value string_method(const std::string& s, const std::string& name, int line) {
  if (name == "startswith" || name == "endswith") {
    const bool start = name == "startswith";
    return bound(name, [s, start, line](Args& a, Kwargs& kw) {
      const Value p = arg(a, kw, 0, "prefix");
      List options = p.is_list() ? *p.list : List{p};
      for (const Value& o : options) {
        const std::string x = need_str(o, line, start ? "startswith()" : "endswith()");
        if (x.size() <= s.size() && (start ? s.compare(0, x.size(), x) == 0 : s.compare(s.size() - x.size(), x.size(), x) == 0))
          return Value::boolean(true);
      }
      return Value::boolean(false);
    });
  }
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const bool l = name != "rstrip", r = name != "lstrip";
    return bound(name, [s, l, r](Args& a, Kwargs& kw) { return Value::string(py_strip(s, arg(a, kw, 0, "chars"), l, r)); });
  }
  if (name == "split")
    return bound(name, [s, line](Args& a, Kwargs& kw) {
      const Value m = arg(a, kw, 1, "maxsplit", Value::integer(-1));
      return str_split(s, arg(a, kw, 0, "sep"), need_int(m, line, "split()"), line);
    });
  if (name == "replace")
    return bound(name, [s, line](Args& a, Kwargs& kw) {
      const Value c = arg(a, kw, 2, "count", Value::integer(-1));
      return Value::string(str_replace(s, need_str(arg(a, kw, 0, "old"), line, "replace()"),
                                       need_str(arg(a, kw, 1, "new"), line, "replace()"), need_int(c, line, "replace()")));
    });
  if (name == "lower" || name == "upper")
    return bound(name, [s, up = name == "upper"](Args&, Kwargs&) { return Value::string(case_map(s, up ? 1 : 0)); });
  if (name == "title" || name == "capitalize")
    return bound(name, [s, cap = name == "capitalize"](Args&, Kwargs&) { return Value::string(title_case(s, cap)); });
  if (name == "find" || name == "count")
    return bound(name, [s, name, line](Args& a, Kwargs& kw) {
      const std::string x = need_str(arg(a, kw, 0, "sub"), line, name + "()");
      if (name == "find") {
        const size_t hit = s.find(x);
        return Value::integer(hit == std::string::npos ? -1 : static_cast<int64_t>(utf8_length(std::string_view(s).substr(0, hit))));
      }
      int64_t n = 0;
      if (x.empty()) return Value::integer(static_cast<int64_t>(utf8_length(s)) + 1);
      for (size_t p = s.find(x); p != std::string::npos; p = s.find(x, p + x.size())) ++n;
      return Value::integer(n);
    });
  if (name == "join")
    return bound(name, [s, line](Args& a, Kwargs& kw) {
      std::string out;
      const List items = iterate(arg(a, kw, 0, "iterable"), line);
      for (size_t k = 0; k < items.size(); ++k) out += (k ? s : "") + need_str(items[k], line, "join()");
      return Value::string(out);
    });
  if (name == "isdigit" || name == "isalpha" || name == "isspace" || name == "isupper" || name == "islower")
    return bound(name, [s, name](Args&, Kwargs&) {
      if (s.empty()) return Value::boolean(false);
      for (size_t i = 0; i < s.size();) {
        const auto c = static_cast<UChar32>(next_code_point(s, i, nullptr));
        const bool ok = name == "isdigit" ? u_isdigit(c) : name == "isalpha" ? u_isalpha(c) : name == "isspace" ? py_isspace(static_cast<uint32_t>(c))
                        : name == "isupper" ? !u_islower(c) : !u_isupper(c);
        if (!ok) return Value::boolean(false);
      }
      return Value::boolean(true);
    });
  return Value::undefined("str." + name);
}

Value dict_method(const Value& d, const std::string& name) {
  if (name == "items" || name == "keys" || name == "values")
    return bound(name, [d, name](Args&, Kwargs&) {
      List out;
      for (const auto& [k, v] : d.dict->items) {
        if (name == "items") out.push_back(Value::make_list({Value::string(k), v}, true));
        else out.push_back(name == "keys" ? Value::string(k) : v);
      }
      return Value::make_list(std::move(out));
    });
  if (name == "get")
    return bound(name, [d](Args& a, Kwargs& kw) {
      const Value key = arg(a, kw, 0, "key");
      const Value* v = key.is_string() ? d.dict->find(key.s) : nullptr;
      return v ? *v : arg(a, kw, 1, "default", Value::none());
    });
  return Value::undefined();
}

}  // namespace

std::string py_strip(std::string_view s, const Value& chars, bool left, bool right) {
  const auto cps = code_points(s);
  std::vector<uint32_t> set;
  const bool ws = chars.is_undefined() || chars.is_none();
  if (!ws) set = code_points(chars.s);
  const auto strip_it = [&](uint32_t c) { return ws ? py_isspace(c) : std::find(set.begin(), set.end(), c) != set.end(); };
  size_t b = 0, e = cps.size();
  if (left)
    while (b < e && strip_it(cps[b])) ++b;
  if (right)
    while (e > b && strip_it(cps[e - 1])) --e;
  return from_code_points(cps, b, e);
}

Value get_attr(const Value& obj, const std::string& name, int line) {
  switch (obj.type) {
    case Value::Type::Undefined:
      fail(line, fmt::format("'{}' is undefined (reading attribute '{}')", obj.s.empty() ? "value" : obj.s, name));
    case Value::Type::Dict: {
      if (Value m = dict_method(obj, name); !m.is_undefined()) return m;
      if (const Value* v = obj.dict->find(name)) return *v;
      return Value::undefined(name);
    }
    case Value::Type::Namespace: {
      if (const Value* v = obj.dict->find(name)) return *v;
      return Value::undefined(name);
    }
    case Value::Type::String: return string_method(obj.s, name, line);
    default: return Value::undefined(name);
  }
}

namespace {

// Python index normalisation; false when out of range.
bool norm_index(int64_t& k, size_t n) {
  if (k < 0) k += static_cast<int64_t>(n);
  return k >= 0 && k < static_cast<int64_t>(n);
}

}  // namespace

Value get_item(const Value& obj, const Value& key, int line) {
  switch (obj.type) {
    case Value::Type::Undefined:
      fail(line, fmt::format("'{}' is undefined (reading an item)", obj.s.empty() ? "value" : obj.s));
    case Value::Type::List: {
      if (key.type != Value::Type::Int) return key.is_string() ? get_attr(obj, key.s, line) : Value::undefined();
      int64_t k = key.i;
      return norm_index(k, obj.list->size()) ? (*obj.list)[static_cast<size_t>(k)] : Value::undefined();
    }
    case Value::Type::String: {
      if (key.type != Value::Type::Int) return Value::undefined();
      const auto chars = utf8_chars(obj.s);
      int64_t k = key.i;
      return norm_index(k, chars.size()) ? Value::string(std::string(chars[static_cast<size_t>(k)])) : Value::undefined();
    }
    case Value::Type::Dict:
    case Value::Type::Namespace: {
      if (key.is_string()) {
        if (const Value* v = obj.dict->find(key.s)) return *v;
        return obj.type == Value::Type::Dict ? dict_method(obj, key.s) : Value::undefined(key.s);
      }
      return Value::undefined();
    }
    default: return Value::undefined();
  }
}

Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step_v, int line) {
  const bool is_str = obj.is_string();
  if (!is_str && !obj.is_list()) fail(line, fmt::format("cannot slice a {}", obj.type_name()));
  std::vector<std::string_view> chars;
  if (is_str) chars = utf8_chars(obj.s);
  const auto n = static_cast<int64_t>(is_str ? chars.size() : obj.list->size());
  const int64_t step = (step_v.is_undefined() || step_v.is_none()) ? 1 : need_int(step_v, line, "slice step");
  if (step == 0) fail(line, "slice step cannot be zero");
  const auto bound_of = [&](const Value& v, int64_t dflt) {
    if (v.is_undefined() || v.is_none()) return dflt;
    int64_t k = need_int(v, line, "slice bound");
    if (k < 0) k += n;
    if (step > 0) return std::clamp<int64_t>(k, 0, n);
    return std::clamp<int64_t>(k, -1, n - 1);
  };
  const int64_t b = bound_of(start, step > 0 ? 0 : n - 1), e = bound_of(stop, step > 0 ? n : -1);
  List items;
  std::string s;
  for (int64_t k = b; step > 0 ? k < e : k > e; k += step) {
    if (is_str) s += chars[static_cast<size_t>(k)];
    else items.push_back((*obj.list)[static_cast<size_t>(k)]);
  }
  return is_str ? Value::string(std::move(s)) : Value::make_list(std::move(items), obj.is_tuple);
}

List iterate(const Value& v, int line) {
  switch (v.type) {
    case Value::Type::Undefined: return {};
    case Value::Type::List: return *v.list;
    case Value::Type::Dict:
    case Value::Type::Namespace: {
      List keys;
      for (const auto& kv : v.dict->items) keys.push_back(Value::string(kv.first));
      return keys;
    }
    case Value::Type::String: {
      List chars;
      for (auto c : utf8_chars(v.s)) chars.push_back(Value::string(std::string(c)));
      return chars;
    }
    default: fail(line, fmt::format("'{}' object is not iterable", v.type_name()));
  }
}

bool apply_test(const std::string& name, const Value& v, Args& a, int line) {
  using T = Value::Type;
  const auto other = [&]() -> const Value& {
    if (a.empty()) fail(line, fmt::format("test '{}' needs an argument", name));
    return a[0];
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.type == T::Dict;
  if (name == "iterable") return v.is_undefined() || v.is_list() || v.is_string() || v.type == T::Dict || v.type == T::Namespace;
  if (name == "sequence") return v.is_undefined() || v.is_list() || v.is_string() || v.type == T::Dict;
  if (name == "number") return v.is_number() || v.type == T::Bool;
  if (name == "integer") return v.type == T::Int;
  if (name == "float") return v.type == T::Float;
  if (name == "boolean") return v.type == T::Bool;
  if (name == "true") return v.type == T::Bool && v.b;
  if (name == "false") return v.type == T::Bool && !v.b;
  if (name == "callable") return v.is_callable();
  if (name == "even" || name == "odd") return (need_int(v, line, name) % 2 == 0) == (name == "even");
  if (name == "divisibleby") {
    const int64_t x = need_int(v, line, name), y = need_int(other(), line, name);
    if (y == 0) fail(line, "divisibleby(0): integer division by zero");
    return y == -1 || x % y == 0;
  }
  if (name == "lower" || name == "upper") return v.is_string() && case_map(v.s, name == "upper" ? 1 : 0) == v.s;
  if (name == "eq" || name == "equalto" || name == "==") return equal(v, other());
  if (name == "ne" || name == "!=") return !equal(v, other());
  if (name == "lt" || name == "lessthan" || name == "<") return compare(v, other()) < 0;
  if (name == "le" || name == "<=") return compare(v, other()) <= 0;
  if (name == "gt" || name == "greaterthan" || name == ">") return compare(v, other()) > 0;
  if (name == "ge" || name == ">=") return compare(v, other()) >= 0;
  if (name == "sameas") return equal(v, other()) && v.type == other().type;
  if (name == "in") {
    const Value& c = other();
    if (c.is_string()) return v.is_string() && c.s.find(v.s) != std::string::npos;
    for (const Value& x : iterate(c, line))
      if (equal(x, v)) return true;
    return false;
  }
  fail(line, fmt::format("unsupported test '{}'", name));
}

}  // namespace tessera::tok::jinja
