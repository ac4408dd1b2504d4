// Jinja filters and global functions (see builtins.h). tojson follows Hugging Face:
// json.dumps(value, ensure_ascii=False, indent=indent, sort_keys=False).
#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <chrono>
#include <cmath>
#include <ctime>

#include "core/error.h"
#include "tokenizer/jinja/builtins.h"

namespace tessera::tok::jinja {

namespace {

[[noreturn]] void fail(int line, const std::string& msg) { throw_error("chat template line {}: {}", line, msg); }

Value arg(const Args& a, const Kwargs& kw, size_t k, std::string_view name, Value fallback = Value::undefined()) {
  if (k < a.size()) return a[k];
  for (const auto& [key, v] : kw)
    if (key == name) return v;
  return fallback;
}

std::string need_str(const Value& v, int line, std::string_view what) {
  if (!v.is_string()) fail(line, fmt::format("filter '{}' needs a string, got {}", what, v.type_name()));
  return v.s;
}

// Looks up a dotted attribute path ("a.b") on v (map / selectattr / sort / join attribute=).
Value attr_path(const Value& v, const std::string& path, int line) {
  Value cur = v;
  size_t pos = 0;
  while (pos <= path.size()) {
    const size_t dot = path.find('.', pos);
    const std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    if (cur.is_undefined()) return cur;
    const bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    int64_t index = 0;
    const bool numeric_ok = numeric && std::from_chars(part.data(), part.data() + part.size(), index).ec == std::errc();
    cur = numeric_ok ? get_item(cur, Value::integer(index), line) : get_item(cur, Value::string(part), line);
    if (dot == std::string::npos) break;
    pos = dot + 1;
  }
  return cur;
}

// select / reject / selectattr / rejectattr.
Value select_items(const Value& seq, Args& a, Kwargs&, bool keep, bool by_attr, int line) {
  size_t k = 0;
  std::string attr;
  if (by_attr) {
    if (a.empty()) fail(line, "selectattr / rejectattr need an attribute name");
    attr = need_str(a[k++], line, "selectattr");
  }
  std::string test = k < a.size() ? need_str(a[k++], line, "select") : "";
  Args test_args(a.begin() + static_cast<std::ptrdiff_t>(std::min(k, a.size())), a.end());
  List out;
  for (const Value& item : iterate(seq, line)) {
    const Value x = by_attr ? attr_path(item, attr, line) : item;
    const bool ok = test.empty() ? x.truthy() : apply_test(test, x, test_args, line);
    if (ok == keep) out.push_back(item);
  }
  return Value::make_list(std::move(out));
}

std::string indent_text(const std::string& s, const std::string& pad, bool first, bool blank) {
  std::string out;
  size_t pos = 0;
  bool is_first = true;
  while (pos <= s.size()) {
    const size_t nl = s.find('\n', pos);
    const std::string line = s.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    const bool pad_it = (is_first ? first : true) && (blank || !line.empty());
    out += (pad_it ? pad : "") + line;
    if (nl == std::string::npos) break;
    out += '\n';
    pos = nl + 1;
    is_first = false;
  }
  return out;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

Value apply_filter(const std::string& name, const Value& v, Args& a, Kwargs& kw, int line) {
  using T = Value::Type;
  if (name == "safe") return v;
  if (name == "string") return Value::string(to_str(v));
  if (name == "trim") return Value::string(py_strip(need_str(v, line, name), arg(a, kw, 0, "chars"), true, true));
  if (name == "tojson") {
    const Value ind = arg(a, kw, 0, "indent");
    return Value::string(to_json(v, ind.type == T::Int ? static_cast<int>(ind.i) : -1));
  }
  if (name == "length" || name == "count") {
    if (v.is_string()) return Value::integer(static_cast<int64_t>(utf8_length(v.s)));
    if (v.is_list()) return Value::integer(static_cast<int64_t>(v.list->size()));
    if (v.type == T::Dict || v.type == T::Namespace) return Value::integer(static_cast<int64_t>(v.dict->items.size()));
    if (v.is_undefined()) return Value::integer(0);
    fail(line, fmt::format("object of type '{}' has no len()", v.type_name()));
  }
  if (name == "items") {
    if (v.is_undefined()) return Value::make_list();
    if (v.type != T::Dict) fail(line, fmt::format("filter 'items' needs a mapping, got {}", v.type_name()));
    List out;
    for (const auto& [k, x] : v.dict->items) out.push_back(Value::make_list({Value::string(k), x}, true));
    return Value::make_list(std::move(out));
  }
  if (name == "list") return Value::make_list(iterate(v, line));
  if (name == "first" || name == "last") {
    const List items = iterate(v, line);
    if (items.empty()) return Value::undefined("first/last of an empty sequence");
    return name == "first" ? items.front() : items.back();
  }
  if (name == "reverse") {
    if (v.is_string()) {
      auto chars = utf8_chars(v.s);
      std::string out;
      for (auto it = chars.rbegin(); it != chars.rend(); ++it) out += *it;
      return Value::string(out);
    }
    List items = iterate(v, line);
    std::reverse(items.begin(), items.end());
    return Value::make_list(std::move(items));
  }
  if (name == "join") {
    const Value sep = arg(a, kw, 0, "d", Value::string(""));
    const Value attr = arg(a, kw, 1, "attribute");
    std::string out;
    const List items = iterate(v, line);
    for (size_t k = 0; k < items.size(); ++k) {
      const Value x = attr.is_string() ? attr_path(items[k], attr.s, line) : items[k];
      out += (k ? to_str(sep) : "") + to_str(x);
    }
    return Value::string(out);
  }
  if (name == "default" || name == "d") {
    const Value fallback = arg(a, kw, 0, "default_value", Value::string(""));
    const bool boolean = arg(a, kw, 1, "boolean", Value::boolean(false)).truthy();
    return (v.is_undefined() || (boolean && !v.truthy())) ? fallback : v;
  }
  if (name == "lower" || name == "upper" || name == "title" || name == "capitalize") {
    Value m = get_attr(Value::string(need_str(v, line, name)), name, line);
    Args none;
    Kwargs nokw;
    return m.fn->call(none, nokw);
  }
  if (name == "replace") {
    Value m = get_attr(Value::string(need_str(v, line, name)), "replace", line);
    return m.fn->call(a, kw);
  }
  if (name == "map") {
    const Value attr = arg(Args{}, kw, 0, "attribute");
    List out;
    if (attr.is_string()) {
      const Value dflt = arg(Args{}, kw, 0, "default");
      for (const Value& item : iterate(v, line)) {
        Value x = attr_path(item, attr.s, line);
        out.push_back(x.is_undefined() && !dflt.is_undefined() ? dflt : x);
      }
    } else {
      if (a.empty()) fail(line, "filter 'map' needs a filter name or attribute=");
      const std::string filter = need_str(a[0], line, "map");
      Args rest(a.begin() + 1, a.end());
      for (const Value& item : iterate(v, line)) {
        Args ra = rest;
        Kwargs rk;
        out.push_back(apply_filter(filter, item, ra, rk, line));
      }
    }
    return Value::make_list(std::move(out));
  }
  if (name == "select" || name == "reject") return select_items(v, a, kw, name == "select", false, line);
  if (name == "selectattr" || name == "rejectattr") return select_items(v, a, kw, name == "selectattr", true, line);
  if (name == "unique") {
    List out;
    for (const Value& x : iterate(v, line))
      if (std::none_of(out.begin(), out.end(), [&](const Value& y) { return equal(x, y); })) out.push_back(x);
    return Value::make_list(std::move(out));
  }
  if (name == "sort") {
    const bool reverse = arg(a, kw, 0, "reverse", Value::boolean(false)).truthy();
    const Value attr = arg(a, kw, 2, "attribute");
    const List items = iterate(v, line);
    std::vector<size_t> order(items.size());
    for (size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::sort(order.begin(), order.end(), [&](size_t i, size_t j) {  // stable: ties keep their order
      const Value& x = items[i];
      const Value& y = items[j];
      const Value kx = attr.is_string() ? attr_path(x, attr.s, line) : x, ky = attr.is_string() ? attr_path(y, attr.s, line) : y;
      const int c = reverse ? compare(ky, kx) : compare(kx, ky);
      return c != 0 ? c < 0 : i < j;
    });
    List sorted;
    for (size_t k : order) sorted.push_back(items[k]);
    return Value::make_list(std::move(sorted));
  }
  if (name == "int") {
    if (v.type == T::Int) return v;
    if (v.type == T::Float) return Value::integer(static_cast<int64_t>(v.f));
    if (v.type == T::Bool) return Value::integer(v.b);
    if (v.is_string()) {  // Python int(): optional sign and surrounding whitespace
      const std::string t = py_strip(v.s, Value::undefined(), true, true);
      const char* b = t.data() + (!t.empty() && t[0] == '+' ? 1 : 0);
      int64_t x = 0;
      const auto r = std::from_chars(b, t.data() + t.size(), x);
      if (r.ec == std::errc() && r.ptr == t.data() + t.size() && !t.empty()) return Value::integer(x);
    }
    return arg(a, kw, 0, "default", Value::integer(0));
  }
  if (name == "float") {
    if (v.is_number() || v.type == T::Bool) return Value::number(v.as_double());
    if (v.is_string()) {
      const std::string t = py_strip(v.s, Value::undefined(), true, true);
      char* end = nullptr;
      const double x = std::strtod(t.c_str(), &end);
      if (!t.empty() && end == t.c_str() + t.size()) return Value::number(x);
    }
    return arg(a, kw, 0, "default", Value::number(0));
  }
  if (name == "abs") {
    if (v.type == T::Int) {
      if (v.i == INT64_MIN) fail(line, "integer overflow in abs");
      return Value::integer(v.i < 0 ? -v.i : v.i);
    }
    if (v.type == T::Float) return Value::number(std::fabs(v.f));
    fail(line, "filter 'abs' needs a number");
  }
  if (name == "indent") {
    const Value width = arg(a, kw, 0, "width", Value::integer(4));
    if (width.type == Value::Type::Int && width.i > 4096) fail(line, "filter 'indent': width above 4096");
    const std::string pad = width.is_string() ? width.s : std::string(static_cast<size_t>(std::max<int64_t>(0, width.i)), ' ');
    return Value::string(indent_text(to_str(v), pad, arg(a, kw, 1, "first", Value::boolean(false)).truthy(),
                                     arg(a, kw, 2, "blank", Value::boolean(false)).truthy()));
  }
  if (name == "e" || name == "escape") return Value::string(html_escape(to_str(v)));
  fail(line, fmt::format("unsupported filter '{}'", name));
}

void add_globals(Dict& g) {
  g.set("raise_exception", Value::function("raise_exception", [](Args& a, Kwargs&) -> Value {
          throw_error("chat template raised an exception: {}", a.empty() ? std::string() : to_str(a[0]));
        }));
  g.set("namespace", Value::function("namespace", [](Args& a, Kwargs& kw) {
          Value ns = Value::make_namespace();
          for (const Value& d : a)
            if (d.type == Value::Type::Dict)
              for (const auto& [k, x] : d.dict->items) ns.dict->set(k, x);
          for (const auto& [k, x] : kw) ns.dict->set(k, x);
          return ns;
        }));
  g.set("dict", Value::function("dict", [](Args&, Kwargs& kw) {
          Value d = Value::make_dict();
          for (const auto& [k, x] : kw) d.dict->set(k, x);
          return d;
        }));
  g.set("range", Value::function("range", [](Args& a, Kwargs&) {
          int64_t start = 0, stop = 0, step = 1;
          const auto num = [](const Value& v) {
            if (v.type != Value::Type::Int) throw_error("chat template: range() needs integers");
            return v.i;
          };
          if (a.size() == 1) {
            stop = num(a[0]);
          } else if (a.size() >= 2) {
            start = num(a[0]);
            stop = num(a[1]);
            if (a.size() > 2) step = num(a[2]);
          }
          if (step == 0) throw_error("chat template: range() step cannot be zero");
          List out;
          for (int64_t k = start; step > 0 ? k < stop : k > stop;) {
            if (out.size() >= 1000000) throw_error("chat template: range() too long");
            out.push_back(Value::integer(k));
            if (__builtin_add_overflow(k, step, &k)) break;
          }
          return Value::make_list(std::move(out));
        }));
  g.set("strftime_now", Value::function("strftime_now", [](Args& a, Kwargs&) {
          const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
          std::tm tm{};
          localtime_r(&now, &tm);
          char buf[256];
          const std::string f = a.empty() ? "%Y-%m-%d" : to_str(a[0]);
          const size_t n = std::strftime(buf, sizeof buf, f.c_str(), &tm);
          return Value::string(std::string(buf, n));
        }));
}

}  // namespace tessera::tok::jinja
