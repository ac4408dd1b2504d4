// Values of the Jinja-subset interpreter, with Python semantics where templates can see them:
// truthiness, equality, ordering, str()/repr() text and json.dumps-style tojson.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace tessera::tok::jinja {

struct Value;
using List = std::vector<Value>;
struct Dict;
struct Callable;

struct Value {
  enum class Type { Undefined, None, Bool, Int, Float, String, List, Dict, Namespace, Callable };
  Type type = Type::Undefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;                      // String; for Undefined: the name that was missing (messages)
  std::shared_ptr<List> list;         // List (tuple when is_tuple)
  std::shared_ptr<Dict> dict;         // Dict and Namespace (a namespace is a mutable dict)
  std::shared_ptr<Callable> fn;       // macros, global functions, bound methods
  bool is_tuple = false;

  static Value undefined(std::string what = "") { Value v; v.s = std::move(what); return v; }
  static Value none() { Value v; v.type = Type::None; return v; }
  static Value boolean(bool x) { Value v; v.type = Type::Bool; v.b = x; return v; }
  static Value integer(int64_t x) { Value v; v.type = Type::Int; v.i = x; return v; }
  static Value number(double x) { Value v; v.type = Type::Float; v.f = x; return v; }
  static Value string(std::string x) { Value v; v.type = Type::String; v.s = std::move(x); return v; }
  static Value make_list(List items = {}, bool tuple = false);
  static Value make_dict();
  static Value make_namespace();
  static Value function(std::string name, std::function<Value(std::vector<Value>&, std::vector<std::pair<std::string, Value>>&)> f);

  bool is_undefined() const { return type == Type::Undefined; }
  bool is_none() const { return type == Type::None; }
  bool is_string() const { return type == Type::String; }
  bool is_number() const { return type == Type::Int || type == Type::Float; }  // bools excluded (jinja's test)
  bool is_list() const { return type == Type::List; }
  bool is_mapping() const { return type == Type::Dict; }
  bool is_callable() const { return type == Type::Callable; }
  double as_double() const { return type == Type::Float ? f : type == Type::Bool ? (b ? 1 : 0) : static_cast<double>(i); }

  bool truthy() const;
  std::string type_name() const;  // Python-ish: "str", "int", "list", "dict", "undefined", ...
};

struct Dict {
  std::vector<std::pair<std::string, Value>> items;  // insertion order, like Python dicts
  const Value* find(std::string_view key) const;
  void set(const std::string& key, Value v);
};

struct Callable {
  std::string name;
  std::function<Value(std::vector<Value>& args, std::vector<std::pair<std::string, Value>>& kwargs)> call;
};

Value from_json(const nlohmann::ordered_json& j);

std::string to_str(const Value& v);   // Python str(): what {{ v }} prints
std::string to_repr(const Value& v);  // Python repr()
// json.dumps(v, ensure_ascii=False, sort_keys=False, indent=indent) with Python's separators.
std::string to_json(const Value& v, int indent = -1);
std::string python_float_repr(double x);

bool equal(const Value& a, const Value& b);
int compare(const Value& a, const Value& b);  // <0, 0, >0; throws for unorderable types

// Strings as Python sees them: indices count code points.
size_t utf8_length(std::string_view s);
std::vector<std::string_view> utf8_chars(std::string_view s);
bool py_isspace(uint32_t cp);

}  // namespace tessera::tok::jinja
