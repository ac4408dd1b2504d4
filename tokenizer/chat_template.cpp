// Chat template rendering: evaluates the parsed Jinja tree (jinja/ast.h) against a JSON context.
#include "tokenizer/chat_template.h"

#include <cmath>
#include <cstdint>
#include <unordered_map>

#include "core/error.h"
#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/builtins.h"

namespace tessera::tok {

namespace {

using namespace jinja;

struct Scope {
  std::unordered_map<std::string, Value> vars;
  Scope* parent = nullptr;

  const Value* find(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent)
      if (auto it = s->vars.find(name); it != s->vars.end()) return &it->second;
    return nullptr;
  }
};

enum class Flow { Normal, Break, Continue };

constexpr size_t kMaxOutput = 64u << 20;  // a template that writes more than this is broken
constexpr int kMaxDepth = 200;            // macro recursion
constexpr int64_t kMaxIterations = 10'000'000;  // loop iterations in one rendering

class Interpreter {
 public:
  explicit Interpreter(Scope& root) : root_(root) {}

  Flow exec(const Body& body, Scope& scope, std::string& out) {
    for (const NodePtr& n : body) {
      const Flow f = exec(*n, scope, out);
      if (f != Flow::Normal) return f;
      if (out.size() > kMaxOutput) throw_error("chat template: output larger than {} bytes", kMaxOutput);
    }
    return Flow::Normal;
  }

 private:
  Scope& root_;
  int depth_ = 0;
  int64_t iterations_ = 0;

  [[noreturn]] static void fail(int line, const std::string& msg) { throw_error("chat template line {}: {}", line, msg); }

  Flow exec(const Node& n, Scope& scope, std::string& out) {
    switch (n.kind) {
      case Node::Kind::Text: out += n.text; return Flow::Normal;
      case Node::Kind::Output: out += to_str(eval(*n.expr, scope)); return Flow::Normal;
      case Node::Kind::If:
        for (const auto& [cond, body] : n.branches)
          if (!cond || eval(*cond, scope).truthy()) return exec(body, scope, out);
        return Flow::Normal;
      case Node::Kind::For: return exec_for(n, scope, out);
      case Node::Kind::Set: {
        Value v = eval(*n.expr, scope);
        assign(n, scope, std::move(v));
        return Flow::Normal;
      }
      case Node::Kind::SetBlock: {
        std::string captured;
        Scope inner{{}, &scope};
        exec(n.body, inner, captured);
        assign(n, scope, Value::string(std::move(captured)));
        return Flow::Normal;
      }
      case Node::Kind::Macro: scope.vars[n.name] = make_macro(n, nullptr); return Flow::Normal;
      case Node::Kind::CallBlock: {
        // The called macro gets `caller`, which renders this block's body.
        const Node* block = &n;
        Scope* here = &scope;
        Value caller = Value::function("caller", [this, block, here](Args&, Kwargs&) {
          std::string s;
          Scope inner{{}, here};
          exec(block->body, inner, s);
          return Value::string(std::move(s));
        });
        const Expr& call = *n.expr;
        Value fn = eval(*call.args[0], scope);
        if (!fn.is_callable()) fail(n.line, "call block needs a macro");
        Args a;
        for (size_t k = 1; k < call.args.size(); ++k) a.push_back(eval(*call.args[k], scope));
        Kwargs kw;
        for (const auto& [k, e] : call.kwargs) kw.emplace_back(k, eval(*e, scope));
        kw.emplace_back("caller", caller);
        out += to_str(fn.fn->call(a, kw));
        return Flow::Normal;
      }
      case Node::Kind::Break: return Flow::Break;
      case Node::Kind::Continue: return Flow::Continue;
    }
    return Flow::Normal;
  }

  void assign(const Node& n, Scope& scope, Value v) {
    if (!n.attr.empty()) {
      const Value* ns = scope.find(n.targets[0]);
      if (!ns || ns->type != Value::Type::Namespace)
        fail(n.line, fmt::format("cannot set attribute '{}' of '{}': not a namespace", n.attr, n.targets[0]));
      ns->dict->set(n.attr, std::move(v));
      return;
    }
    if (n.targets.size() == 1) {
      scope.vars[n.targets[0]] = std::move(v);
      return;
    }
    const List items = iterate(v, n.line);
    if (items.size() != n.targets.size())
      fail(n.line, fmt::format("cannot unpack {} values into {} names", items.size(), n.targets.size()));
    for (size_t k = 0; k < items.size(); ++k) scope.vars[n.targets[k]] = items[k];
  }

  void bind_targets(const Node& n, Scope& scope, const Value& item) {
    if (n.targets.size() == 1) {
      scope.vars[n.targets[0]] = item;
      return;
    }
    const List parts = iterate(item, n.line);
    if (parts.size() != n.targets.size())
      fail(n.line, fmt::format("cannot unpack {} values into {} loop variables", parts.size(), n.targets.size()));
    for (size_t k = 0; k < parts.size(); ++k) scope.vars[n.targets[k]] = parts[k];
  }

  Flow exec_for(const Node& n, Scope& scope, std::string& out) {
    const Value seq = eval(*n.expr, scope);
    if (seq.is_none()) fail(n.line, "'NoneType' object is not iterable");
    List items = iterate(seq, n.line);
    if (n.filter) {  // `for x in xs if cond`: the loop only sees the items that pass
      List kept;
      for (const Value& item : items) {
        Scope probe{{}, &scope};
        bind_targets(n, probe, item);
        if (eval(*n.filter, probe).truthy()) kept.push_back(item);
      }
      items = std::move(kept);
    }
    if (items.empty()) {
      Scope inner{{}, &scope};
      exec(n.else_body, inner, out);
      return Flow::Normal;
    }
    const auto len = static_cast<int64_t>(items.size());
    for (int64_t k = 0; k < len; ++k) {
      if (++iterations_ > kMaxIterations) fail(n.line, "loops ran more than 10M iterations");
      Scope inner{{}, &scope};
      bind_targets(n, inner, items[static_cast<size_t>(k)]);
      Value loop = Value::make_dict();
      Dict& d = *loop.dict;
      d.set("index", Value::integer(k + 1));
      d.set("index0", Value::integer(k));
      d.set("revindex", Value::integer(len - k));
      d.set("revindex0", Value::integer(len - k - 1));
      d.set("first", Value::boolean(k == 0));
      d.set("last", Value::boolean(k == len - 1));
      d.set("length", Value::integer(len));
      d.set("depth", Value::integer(1));
      d.set("depth0", Value::integer(0));
      if (k > 0) d.set("previtem", items[static_cast<size_t>(k - 1)]);
      if (k + 1 < len) d.set("nextitem", items[static_cast<size_t>(k + 1)]);
      d.set("cycle", Value::function("cycle", [k](Args& a, Kwargs&) {
              if (a.empty()) throw_error("chat template: loop.cycle() needs arguments");
              return a[static_cast<size_t>(k) % a.size()];
            }));
      inner.vars["loop"] = loop;
      const Flow f = exec(n.body, inner, out);
      if (f == Flow::Break) break;
    }
    return Flow::Normal;
  }

  Value make_macro(const Node& n, Scope*) {
    const Node* def = &n;
    return Value::function(n.name, [this, def](Args& a, Kwargs& kw) {
      if (++depth_ > kMaxDepth) throw_error("chat template line {}: macro '{}' nested too deeply", def->line, def->name);
      Scope inner{{}, &root_};
      if (a.size() > def->params.size())
        fail(def->line, fmt::format("macro '{}' takes {} arguments, {} given", def->name, def->params.size(), a.size()));
      for (size_t k = 0; k < def->params.size(); ++k) {
        const auto& [pname, dflt] = def->params[k];
        if (k < a.size()) {
          inner.vars[pname] = a[k];
        } else {
          inner.vars[pname] = dflt ? eval(*dflt, inner) : Value::undefined(pname);
        }
      }
      for (auto& [key, v] : kw) {
        bool known = key == "caller";
        for (const auto& p : def->params) known = known || p.first == key;
        if (!known) fail(def->line, fmt::format("macro '{}' has no parameter '{}'", def->name, key));
        inner.vars[key] = v;
      }
      std::string s;
      exec(def->body, inner, s);
      --depth_;
      return Value::string(std::move(s));
    });
  }

  Value eval(const Expr& e, Scope& scope) {
    switch (e.kind) {
      case Expr::Kind::Literal: return e.value;
      case Expr::Kind::Name: {
        const Value* v = scope.find(e.name);
        return v ? *v : Value::undefined(e.name);
      }
      case Expr::Kind::List:
      case Expr::Kind::Tuple: {
        List items;
        for (const auto& x : e.args) items.push_back(eval(*x, scope));
        return Value::make_list(std::move(items), e.kind == Expr::Kind::Tuple);
      }
      case Expr::Kind::Dict: {
        Value d = Value::make_dict();
        for (size_t k = 0; k + 1 < e.args.size(); k += 2) {
          const Value key = eval(*e.args[k], scope);
          if (!key.is_string()) fail(e.line, fmt::format("unsupported construct: dict key of type {}", key.type_name()));
          d.dict->set(key.s, eval(*e.args[k + 1], scope));
        }
        return d;
      }
      case Expr::Kind::Attr: return get_attr(eval(*e.args[0], scope), e.name, e.line);
      case Expr::Kind::Index: return get_item(eval(*e.args[0], scope), eval(*e.args[1], scope), e.line);
      case Expr::Kind::Slice: {
        const auto part = [&](size_t k) { return e.args[k] ? eval(*e.args[k], scope) : Value::none(); };
        return slice(eval(*e.args[0], scope), part(1), part(2), part(3), e.line);
      }
      case Expr::Kind::Call: {
        const Value fn = eval(*e.args[0], scope);
        if (!fn.is_callable()) {
          const std::string what = e.args[0]->kind == Expr::Kind::Name || e.args[0]->kind == Expr::Kind::Attr ? e.args[0]->name : "value";
          fail(e.line, fmt::format("'{}' is not callable (unsupported function or method?)", fn.is_undefined() && !fn.s.empty() ? fn.s : what));
        }
        Args a;
        for (size_t k = 1; k < e.args.size(); ++k) a.push_back(eval(*e.args[k], scope));
        Kwargs kw;
        for (const auto& [k, x] : e.kwargs) kw.emplace_back(k, eval(*x, scope));
        return fn.fn->call(a, kw);
      }
      case Expr::Kind::Filter: {
        const Value subject = eval(*e.args[0], scope);
        Args a;
        for (size_t k = 1; k < e.args.size(); ++k) a.push_back(eval(*e.args[k], scope));
        Kwargs kw;
        for (const auto& [k, x] : e.kwargs) kw.emplace_back(k, eval(*x, scope));
        return apply_filter(e.name, subject, a, kw, e.line);
      }
      case Expr::Kind::Test: {
        const Value subject = eval(*e.args[0], scope);
        Args a;
        for (size_t k = 1; k < e.args.size(); ++k) a.push_back(eval(*e.args[k], scope));
        return Value::boolean(apply_test(e.name, subject, a, e.line) != e.negated);
      }
      case Expr::Kind::Unary: {
        const Value v = eval(*e.args[0], scope);
        if (e.name == "not") return Value::boolean(!v.truthy());
        if (v.type == Value::Type::Int || v.type == Value::Type::Bool) {
          const int64_t x = v.type == Value::Type::Bool ? v.b : v.i;
          if (e.name == "-" && x == INT64_MIN) fail(e.line, "integer overflow (Python would use a big integer)");
          return Value::integer(e.name == "-" ? -x : x);
        }
        if (v.type == Value::Type::Float) return Value::number(e.name == "-" ? -v.f : v.f);
        fail(e.line, fmt::format("bad operand type for unary {}: '{}'", e.name, v.type_name()));
      }
      case Expr::Kind::Binary: return eval_binary(e, scope);
      case Expr::Kind::Cond:
        if (eval(*e.args[1], scope).truthy()) return eval(*e.args[0], scope);
        return e.args[2] ? eval(*e.args[2], scope) : Value::undefined();
    }
    return Value::undefined();
  }

  static Value checked(const Expr& e, bool overflow, int64_t r) {
    if (overflow) fail(e.line, "integer overflow (Python would use a big integer)");
    return Value::integer(r);
  }

  [[noreturn]] void type_error(const Expr& e, const Value& a, const Value& b) {
    for (const Value* v : {&a, &b})
      if (v->is_undefined()) fail(e.line, fmt::format("'{}' is undefined (in '{}')", v->s.empty() ? "value" : v->s, e.name));
    fail(e.line, fmt::format("unsupported operand types for {}: '{}' and '{}'", e.name, a.type_name(), b.type_name()));
  }

  Value eval_binary(const Expr& e, Scope& scope) {
    const std::string& op = e.name;
    if (op == "and" || op == "or") {
      Value a = eval(*e.args[0], scope);
      if ((op == "and") != a.truthy()) return a;
      return eval(*e.args[1], scope);
    }
    const Value a = eval(*e.args[0], scope), b = eval(*e.args[1], scope);
    if (op == "~") return Value::string(to_str(a) + to_str(b));
    if (op == "==") return Value::boolean(equal(a, b));
    if (op == "!=") return Value::boolean(!equal(a, b));
    if (op == "in" || op == "not in") {
      if (b.is_undefined()) type_error(e, a, b);
      Args args{b};
      return Value::boolean(apply_test("in", a, args, e.line) == (op == "in"));
    }
    if (op == "<" || op == ">" || op == "<=" || op == ">=") {
      if (a.is_undefined() || b.is_undefined()) type_error(e, a, b);
      const int c = compare(a, b);
      return Value::boolean(op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0);
    }
    const bool nums = (a.is_number() || a.type == Value::Type::Bool) && (b.is_number() || b.type == Value::Type::Bool);
    const bool ints = nums && a.type != Value::Type::Float && b.type != Value::Type::Float;
    const auto ival = [](const Value& v) { return v.type == Value::Type::Bool ? static_cast<int64_t>(v.b) : v.i; };
    int64_t r = 0;
    if (op == "+") {
      if (a.is_string() && b.is_string()) return Value::string(a.s + b.s);
      if (a.is_list() && b.is_list()) {
        List items = *a.list;
        items.insert(items.end(), b.list->begin(), b.list->end());
        return Value::make_list(std::move(items));
      }
      if (ints) return checked(e, __builtin_add_overflow(ival(a), ival(b), &r), r);
      if (nums) return Value::number(a.as_double() + b.as_double());
      type_error(e, a, b);
    }
    if (op == "*") {
      if ((a.is_string() && b.type == Value::Type::Int) || (b.is_string() && a.type == Value::Type::Int)) {
        const Value& s = a.is_string() ? a : b;
        const int64_t n = a.is_string() ? b.i : a.i;
        if (n > 0 && !s.s.empty() && static_cast<uint64_t>(n) > kMaxOutput / s.s.size()) fail(e.line, "string repetition too large");
        std::string out;
        for (int64_t k = 0; k < n; ++k) out += s.s;
        return Value::string(out);
      }
      if (ints) return checked(e, __builtin_mul_overflow(ival(a), ival(b), &r), r);
      if (nums) return Value::number(a.as_double() * b.as_double());
      type_error(e, a, b);
    }
    if (!nums) type_error(e, a, b);
    if (op == "-") return ints ? checked(e, __builtin_sub_overflow(ival(a), ival(b), &r), r) : Value::number(a.as_double() - b.as_double());
    if (op == "/") {
      if (b.as_double() == 0) fail(e.line, "division by zero");
      return Value::number(a.as_double() / b.as_double());
    }
    if (op == "//" || op == "%") {
      if (b.as_double() == 0) fail(e.line, "division by zero");
      if (ints) {  // Python floors toward negative infinity
        const int64_t x = ival(a), y = ival(b);
        if (x == INT64_MIN && y == -1) fail(e.line, "integer overflow (Python would use a big integer)");
        int64_t q = x / y;
        if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
        return Value::integer(op == "//" ? q : x - q * y);
      }
      const double x = a.as_double(), y = b.as_double();
      const double q = std::floor(x / y);
      return Value::number(op == "//" ? q : x - q * y);
    }
    if (op == "**") {
      if (ints && ival(b) >= 0) {
        int64_t p = 1;
        for (int64_t k = 0; k < ival(b); ++k) {
          if (__builtin_mul_overflow(p, ival(a), &p)) fail(e.line, "integer overflow (Python would use a big integer)");
          if (p == 0 || p == 1) break;  // 0 ** n, 1 ** n
          if (p == -1 && k + 1 < ival(b)) {
            p = ((ival(b) - k - 1) % 2 == 0) ? -1 : 1;
            break;
          }
        }
        return Value::integer(p);
      }
      return Value::number(std::pow(a.as_double(), b.as_double()));
    }
    fail(e.line, fmt::format("unsupported operator '{}'", op));
  }
};

}  // namespace

namespace {

std::string render_body(const Body& body, const nlohmann::ordered_json& context) {
  Scope root;
  Dict globals;
  add_globals(globals);
  for (auto& [k, v] : globals.items) root.vars[k] = v;
  if (!context.is_object()) throw_error("chat template: the context must be a JSON object");
  for (const auto& [k, v] : context.items()) root.vars[k] = from_json(v);
  Interpreter interp(root);
  std::string out;
  interp.exec(body, root, out);
  return out;
}

}  // namespace

ChatTemplate::ChatTemplate(const std::string& source) : body_(parse(source)) {}
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;
ChatTemplate::~ChatTemplate() = default;
std::string ChatTemplate::render(const nlohmann::ordered_json& context) const { return render_body(body_, context); }

std::string render_chat(const std::string& tmpl, const nlohmann::ordered_json& context) {
  return render_body(parse(tmpl), context);
}

namespace {

// json -> ordered_json without a text round trip (dump() would throw on invalid UTF-8).
nlohmann::ordered_json to_ordered(const nlohmann::json& j, int depth = 0) {
  if (depth > 256) throw_error("chat template: context JSON nested deeper than 256 levels");
  if (j.is_object()) {
    nlohmann::ordered_json o = nlohmann::ordered_json::object();
    for (const auto& [k, v] : j.items()) o[k] = to_ordered(v, depth + 1);
    return o;
  }
  if (j.is_array()) {
    nlohmann::ordered_json a = nlohmann::ordered_json::array();
    for (const auto& v : j) a.push_back(to_ordered(v, depth + 1));
    return a;
  }
  switch (j.type()) {
    case nlohmann::json::value_t::string: return j.get<std::string>();
    case nlohmann::json::value_t::boolean: return j.get<bool>();
    case nlohmann::json::value_t::number_integer: return j.get<int64_t>();
    case nlohmann::json::value_t::number_unsigned: return j.get<uint64_t>();
    case nlohmann::json::value_t::number_float: return j.get<double>();
    default: return nullptr;
  }
}

}  // namespace

std::string render_chat(const std::string& tmpl, const nlohmann::json& context) {
  return render_chat(tmpl, to_ordered(context));
}

}  // namespace tessera::tok
