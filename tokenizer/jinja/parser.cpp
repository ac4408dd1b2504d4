// Jinja parser: statements (if, for, set, macro, call, break, continue) and expressions with
// Jinja's operator precedence. Anything else is rejected with an error naming the construct.
#include <charconv>
#include <cstdlib>

#include "core/error.h"
#include "tokenizer/jinja/ast.h"

namespace tessera::tok::jinja {

namespace {

using K = Token::Kind;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  Body parse_template() {
    std::string end;
    Body body = parse_body({}, end);
    return body;
  }

 private:
  std::vector<Token> t_;
  size_t p_ = 0;

  const Token& peek(size_t ahead = 0) const { return t_[std::min(p_ + ahead, t_.size() - 1)]; }
  const Token& next() { return t_[p_ < t_.size() - 1 ? p_++ : p_]; }
  bool at_op(std::string_view op) const { return peek().kind == K::Op && peek().text == op; }
  bool at_name(std::string_view n) const { return peek().kind == K::Name && peek().text == n; }
  [[noreturn]] void fail(const std::string& what) const {
    throw_error("chat template line {}: {}", peek().line, what);
  }
  void expect_op(std::string_view op) {
    if (!at_op(op)) fail(fmt::format("expected '{}', found '{}'", op, describe(peek())));
    next();
  }
  std::string expect_name() {
    if (peek().kind != K::Name) fail(fmt::format("expected a name, found '{}'", describe(peek())));
    return next().text;
  }
  void expect_block_end() {
    if (peek().kind != K::BlockEnd) fail(fmt::format("expected '%}}', found '{}'", describe(peek())));
    next();
  }
  static std::string describe(const Token& t) {
    switch (t.kind) {
      case K::BlockEnd: return "%}";
      case K::VarEnd: return "}}";
      case K::End: return "end of template";
      case K::Text: return "text";
      default: return t.text;
    }
  }

  // Parses statements until a block tag whose keyword is in `ends`; that keyword goes to `end`.
  Body parse_body(std::initializer_list<std::string_view> ends, std::string& end) {
    Body body;
    while (true) {
      const Token& tok = peek();
      if (tok.kind == K::End) {
        if (ends.size() != 0) fail(fmt::format("missing '{{% {} %}}'", *(ends.end() - 1)));
        return body;
      }
      if (tok.kind == K::Text) {
        auto n = std::make_unique<Node>();
        n->kind = Node::Kind::Text;
        n->line = tok.line;
        n->text = next().text;
        body.push_back(std::move(n));
      } else if (tok.kind == K::VarBegin) {
        next();
        auto n = std::make_unique<Node>();
        n->kind = Node::Kind::Output;
        n->line = tok.line;
        n->expr = parse_expression();
        if (peek().kind != K::VarEnd) fail(fmt::format("expected '}}}}', found '{}'", describe(peek())));
        next();
        body.push_back(std::move(n));
      } else if (tok.kind == K::BlockBegin) {
        const Token& kw = peek(1);
        if (kw.kind == K::Name) {
          for (auto e : ends)
            if (kw.text == e) {
              next();
              next();
              end = kw.text;
              return body;
            }
        }
        next();
        body.push_back(parse_statement());
      } else {
        fail(fmt::format("unexpected '{}'", describe(tok)));
      }
    }
  }

  NodePtr parse_statement() {
    DepthGuard guard(*this);
    const int line = peek().line;
    const std::string kw = expect_name();
    auto n = std::make_unique<Node>();
    n->line = line;
    if (kw == "if") {
      n->kind = Node::Kind::If;
      ExprPtr cond = parse_expression();
      expect_block_end();
      while (true) {
        std::string end;
        Body body = parse_body({"elif", "else", "endif"}, end);
        n->branches.emplace_back(std::move(cond), std::move(body));
        if (end == "endif") break;
        if (end == "elif") {
          cond = parse_expression();
          expect_block_end();
        } else {
          expect_block_end();
          Body else_body = parse_body({"endif"}, end);
          n->branches.emplace_back(nullptr, std::move(else_body));
          break;
        }
      }
      expect_block_end();
    } else if (kw == "for") {
      n->kind = Node::Kind::For;
      n->targets = parse_targets();
      if (!at_name("in")) fail("expected 'in' in a for statement");
      next();
      n->expr = parse_expression(false);  // no bare `a if b else c` here: `if` filters the loop
      if (at_name("if")) {
        next();
        n->filter = parse_expression(false);
      }
      if (at_name("recursive")) fail("unsupported construct: recursive for loops");
      expect_block_end();
      std::string end;
      n->body = parse_body({"else", "endfor"}, end);
      if (end == "else") {
        expect_block_end();
        n->else_body = parse_body({"endfor"}, end);
      }
      expect_block_end();
    } else if (kw == "set") {
      n->targets = parse_targets();
      if (n->targets.size() == 1 && at_op(".")) {
        next();
        n->attr = expect_name();
      }
      if (at_op("=")) {
        n->kind = Node::Kind::Set;
        next();
        n->expr = parse_tuple_or_expression();
        expect_block_end();
      } else {
        n->kind = Node::Kind::SetBlock;
        if (at_op("|")) fail("unsupported construct: filtered set blocks");
        expect_block_end();
        std::string end;
        n->body = parse_body({"endset"}, end);
        expect_block_end();
      }
    } else if (kw == "macro") {
      n->kind = Node::Kind::Macro;
      n->name = expect_name();
      expect_op("(");
      while (!at_op(")")) {
        std::string param = expect_name();
        ExprPtr def;
        if (at_op("=")) {
          next();
          def = parse_expression();
        }
        n->params.emplace_back(std::move(param), std::move(def));
        if (!at_op(")")) expect_op(",");
      }
      next();
      expect_block_end();
      std::string end;
      n->body = parse_body({"endmacro"}, end);
      if (peek().kind == K::Name) next();  // {% endmacro name %}
      expect_block_end();
    } else if (kw == "call") {
      n->kind = Node::Kind::CallBlock;
      if (at_op("(")) fail("unsupported construct: call blocks with arguments");
      n->expr = parse_expression();
      if (n->expr->kind != Expr::Kind::Call) fail("a call block needs a macro call");
      expect_block_end();
      std::string end;
      n->body = parse_body({"endcall"}, end);
      expect_block_end();
    } else if (kw == "break" || kw == "continue") {
      n->kind = kw == "break" ? Node::Kind::Break : Node::Kind::Continue;
      expect_block_end();
    } else {
      throw_error("chat template line {}: unsupported construct: '{{% {} %}}'", line, kw);
    }
    return n;
  }

  std::vector<std::string> parse_targets() {
    std::vector<std::string> names;
    const bool paren = at_op("(");
    if (paren) next();
    names.push_back(expect_name());
    while (at_op(",")) {
      next();
      names.push_back(expect_name());
    }
    if (paren) expect_op(")");
    return names;
  }

  ExprPtr make(Expr::Kind k, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->line = line;
    return e;
  }

  // `a, b` (a tuple without parentheses) is allowed on the right of set.
  ExprPtr parse_tuple_or_expression() {
    const int line = peek().line;
    ExprPtr first = parse_expression();
    if (!at_op(",")) return first;
    auto t = make(Expr::Kind::Tuple, line);
    t->args.push_back(std::move(first));
    while (at_op(",")) {
      next();
      t->args.push_back(parse_expression());
    }
    return t;
  }

  // Nesting guard: a hostile template must not overflow the stack.
  int depth_ = 0;
  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser) : p(parser) {
      if (++p.depth_ > 200) p.fail("expression or block nested too deeply");
    }
    ~DepthGuard() { --p.depth_; }
  };

  ExprPtr parse_expression(bool with_condexpr = true) {
    DepthGuard guard(*this);
    const int line = peek().line;
    ExprPtr e = parse_or();
    if (!with_condexpr) return e;
    while (at_name("if")) {
      next();
      auto c = make(Expr::Kind::Cond, line);
      c->args.push_back(std::move(e));
      c->args.push_back(parse_or());
      if (at_name("else")) {
        next();
        c->args.push_back(parse_expression());
      } else {
        c->args.push_back(nullptr);
      }
      e = std::move(c);
    }
    return e;
  }

  ExprPtr binary(std::string op, ExprPtr a, ExprPtr b, int line) {
    auto e = make(Expr::Kind::Binary, line);
    e->name = std::move(op);
    e->args.push_back(std::move(a));
    e->args.push_back(std::move(b));
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr e = parse_and();
    while (at_name("or")) {
      const int line = next().line;
      e = binary("or", std::move(e), parse_and(), line);
    }
    return e;
  }
  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (at_name("and")) {
      const int line = next().line;
      e = binary("and", std::move(e), parse_not(), line);
    }
    return e;
  }
  ExprPtr parse_not() {
    DepthGuard guard(*this);
    if (at_name("not")) {
      const int line = next().line;
      auto e = make(Expr::Kind::Unary, line);
      e->name = "not";
      e->args.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }
  ExprPtr parse_compare() {
    ExprPtr e = parse_math1();
    while (true) {
      const int line = peek().line;
      std::string op;
      if (peek().kind == K::Op && (at_op("==") || at_op("!=") || at_op("<") || at_op(">") || at_op("<=") || at_op(">="))) {
        op = next().text;
      } else if (at_name("in")) {
        next();
        op = "in";
      } else if (at_name("not") && peek(1).kind == K::Name && peek(1).text == "in") {
        next();
        next();
        op = "not in";
      } else {
        return e;
      }
      e = binary(op, std::move(e), parse_math1(), line);
    }
  }
  ExprPtr parse_math1() {
    ExprPtr e = parse_concat();
    while (at_op("+") || at_op("-")) {
      const Token& op = next();
      e = binary(op.text, std::move(e), parse_concat(), op.line);
    }
    return e;
  }
  ExprPtr parse_concat() {
    ExprPtr e = parse_math2();
    while (at_op("~")) {
      const int line = next().line;
      e = binary("~", std::move(e), parse_math2(), line);
    }
    return e;
  }
  ExprPtr parse_math2() {
    ExprPtr e = parse_pow();
    while (at_op("*") || at_op("/") || at_op("//") || at_op("%")) {
      const Token& op = next();
      e = binary(op.text, std::move(e), parse_pow(), op.line);
    }
    return e;
  }
  ExprPtr parse_pow() {
    ExprPtr e = parse_unary();
    while (at_op("**")) {
      const int line = next().line;
      e = binary("**", std::move(e), parse_unary(), line);
    }
    return e;
  }
  ExprPtr parse_unary(bool with_filter = true) {
    DepthGuard guard(*this);
    ExprPtr e;
    if (at_op("-") || at_op("+")) {
      const Token& op = next();
      e = make(Expr::Kind::Unary, op.line);
      e->name = op.text;
      e->args.push_back(parse_unary(false));
    } else {
      e = parse_postfix(parse_primary());
    }
    return with_filter ? parse_filters(std::move(e)) : std::move(e);
  }

  ExprPtr parse_primary() {
    const Token& tok = peek();
    const int line = tok.line;
    if (tok.kind == K::Name) {
      next();
      if (tok.text == "true" || tok.text == "True") return literal(Value::boolean(true), line);
      if (tok.text == "false" || tok.text == "False") return literal(Value::boolean(false), line);
      if (tok.text == "none" || tok.text == "None") return literal(Value::none(), line);
      auto e = make(Expr::Kind::Name, line);
      e->name = tok.text;
      return e;
    }
    if (tok.kind == K::String) {
      std::string s = next().text;
      while (peek().kind == K::String) s += next().text;  // adjacent literals concatenate
      return literal(Value::string(std::move(s)), line);
    }
    if (tok.kind == K::Int) return literal(Value::integer(parse_int(next().text)), line);
    if (tok.kind == K::Float) return literal(Value::number(std::strtod(next().text.c_str(), nullptr)), line);
    if (at_op("(")) {
      next();
      if (at_op(")")) {
        next();
        return make(Expr::Kind::Tuple, line);
      }
      ExprPtr e = parse_expression();
      if (at_op(",")) {
        auto t = make(Expr::Kind::Tuple, line);
        t->args.push_back(std::move(e));
        while (at_op(",")) {
          next();
          if (at_op(")")) break;
          t->args.push_back(parse_expression());
        }
        e = std::move(t);
      }
      expect_op(")");
      return e;
    }
    if (at_op("[")) {
      next();
      auto e = make(Expr::Kind::List, line);
      while (!at_op("]")) {
        e->args.push_back(parse_expression());
        if (!at_op("]")) expect_op(",");
      }
      next();
      return e;
    }
    if (at_op("{")) {
      next();
      auto e = make(Expr::Kind::Dict, line);
      while (!at_op("}")) {
        e->args.push_back(parse_expression());
        expect_op(":");
        e->args.push_back(parse_expression());
        if (!at_op("}")) expect_op(",");
      }
      next();
      return e;
    }
    fail(fmt::format("unexpected '{}' in an expression", describe(tok)));
  }

  int64_t parse_int(const std::string& digits) const {
    int64_t v = 0;
    const auto r = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    if (r.ec != std::errc() || r.ptr != digits.data() + digits.size())
      fail(fmt::format("unsupported construct: integer literal '{}' does not fit in 64 bits", digits));
    return v;
  }

  ExprPtr literal(Value v, int line) {
    auto e = make(Expr::Kind::Literal, line);
    e->value = std::move(v);
    return e;
  }

  void parse_call_args(Expr& call) {
    expect_op("(");
    while (!at_op(")")) {
      if (at_op("*") || at_op("**")) fail("unsupported construct: *args / **kwargs in a call");
      if (peek().kind == K::Name && peek(1).kind == K::Op && peek(1).text == "=") {
        std::string key = next().text;
        next();
        call.kwargs.emplace_back(std::move(key), parse_expression());
      } else {
        call.args.push_back(parse_expression());
      }
      if (!at_op(")")) expect_op(",");
    }
    next();
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      const int line = peek().line;
      if (at_op(".")) {
        next();
        auto a = make(Expr::Kind::Attr, line);
        if (peek().kind == K::Int) {  // foo.0 means foo[0]
          a->kind = Expr::Kind::Index;
          a->args.push_back(std::move(e));
          a->args.push_back(literal(Value::integer(parse_int(next().text)), line));
        } else {
          a->name = expect_name();
          a->args.push_back(std::move(e));
        }
        e = std::move(a);
      } else if (at_op("[")) {
        next();
        ExprPtr parts[3];
        bool slice = false;
        for (int k = 0; k < 3; ++k) {
          if (!at_op(":") && !at_op("]")) parts[k] = parse_expression();
          if (k < 2 && at_op(":")) {
            next();
            slice = true;
          } else {
            break;
          }
        }
        expect_op("]");
        auto ix = make(slice ? Expr::Kind::Slice : Expr::Kind::Index, line);
        ix->args.push_back(std::move(e));
        if (slice) {
          for (auto& part : parts) ix->args.push_back(std::move(part));
        } else {
          if (!parts[0]) fail("empty subscript");
          ix->args.push_back(std::move(parts[0]));
        }
        e = std::move(ix);
      } else if (at_op("(")) {
        auto c = make(Expr::Kind::Call, line);
        c->args.push_back(std::move(e));
        parse_call_args(*c);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_filters(ExprPtr e) {
    while (true) {
      const int line = peek().line;
      if (at_op("|")) {
        next();
        auto f = make(Expr::Kind::Filter, line);
        f->name = expect_name();
        while (at_op(".")) {  // dotted filter names
          next();
          f->name += "." + expect_name();
        }
        f->args.push_back(std::move(e));
        if (at_op("(")) parse_call_args(*f);
        e = std::move(f);
      } else if (at_name("is")) {
        next();
        auto t = make(Expr::Kind::Test, line);
        if (at_name("not")) {
          next();
          t->negated = true;
        }
        t->name = expect_name();
        t->args.push_back(std::move(e));
        if (at_op("(")) {
          parse_call_args(*t);
        } else if (peek().kind == K::String || peek().kind == K::Int || peek().kind == K::Float ||
                   (peek().kind == K::Name && !at_name("and") && !at_name("or") && !at_name("if") &&
                    !at_name("else") && !at_name("in") && !at_name("is") && !at_name("not"))) {
          t->args.push_back(parse_primary());  // `x is divisibleby 3`, `x is sameas none`
        }
        e = std::move(t);
      } else if (at_op("(")) {
        auto c = make(Expr::Kind::Call, line);
        c->args.push_back(std::move(e));
        parse_call_args(*c);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }
};

}  // namespace

Body parse(std::string_view source) { return Parser(lex(source)).parse_template(); }

}  // namespace tessera::tok::jinja
