// Jinja built-ins: filters, tests, attribute lookup (including str / dict methods) and the
// global functions of Hugging Face chat templates (namespace, range, raise_exception, ...).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace tessera::tok::jinja {

using Args = std::vector<Value>;
using Kwargs = std::vector<std::pair<std::string, Value>>;

// Throws tessera::Error naming an unknown filter or test.
Value apply_filter(const std::string& name, const Value& subject, Args& args, Kwargs& kwargs, int line);
bool apply_test(const std::string& name, const Value& subject, Args& args, int line);

// obj.name: dict key (or a dict / str method), or Undefined. Undefined objects throw.
Value get_attr(const Value& obj, const std::string& name, int line);
// obj[key]: list / str index (negative from the end), dict key; Undefined when absent.
Value get_item(const Value& obj, const Value& key, int line);
Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step, int line);
// The items a for loop visits (dict: keys, str: characters, Undefined: none).
List iterate(const Value& v, int line);

void add_globals(Dict& globals);

// Python str methods used by templates.
std::string py_strip(std::string_view s, const Value& chars, bool left, bool right);

}  // namespace tessera::tok::jinja
