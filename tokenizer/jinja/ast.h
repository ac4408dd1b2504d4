// Jinja-subset syntax: tokens from the lexer and the tree the parser builds.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace tessera::tok::jinja {

// ---- lexer ------------------------------------------------------------------------------------
struct Token {
  enum class Kind { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, End };
  Kind kind;
  std::string text;  // Text data, name, operator, or decoded string literal
  int line = 1;
};

// Whitespace rules of Hugging Face chat templates: trim_blocks and lstrip_blocks on, '-' strips,
// '+' keeps, one trailing newline of the template dropped, newlines normalised to '\n'.
std::vector<Token> lex(std::string_view source);

// ---- expressions ------------------------------------------------------------------------------
struct Expr;
using ExprPtr = std::unique_ptr<Expr>;
struct Expr {
  enum class Kind {
    Literal,  // value
    Name,     // name
    List,     // args = items
    Tuple,    // args = items
    Dict,     // args = key, value, key, value, ...
    Attr,     // args[0] . name
    Index,    // args[0] [ args[1] ]
    Slice,    // args[0] [ args[1] : args[2] : args[3] ]  (null parts allowed)
    Call,     // args[0] ( args[1..] , kwargs )
    Filter,   // args[0] | name ( args[1..], kwargs )
    Test,     // args[0] is [not] name ( args[1..] )
    Unary,    // name in {"not", "-", "+"}; args[0]
    Binary,   // name = operator; args[0], args[1]
    Cond,     // args[0] if args[1] else args[2] (args[2] may be null)
  };
  Kind kind;
  int line = 0;
  Value value;
  std::string name;
  bool negated = false;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
};

// ---- statements -------------------------------------------------------------------------------
struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;
struct Node {
  enum class Kind { Text, Output, If, For, Set, SetBlock, Macro, CallBlock, Break, Continue };
  Kind kind;
  int line = 0;
  std::string text;                   // Text
  ExprPtr expr;                       // Output, For (iterable), Set (value), CallBlock (call)
  std::vector<std::pair<ExprPtr, Body>> branches;  // If: (condition or null for else, body)
  std::vector<std::string> targets;   // For / Set: names (several = tuple unpacking)
  std::string attr;                   // Set: ns.attr target attribute ("" when none)
  ExprPtr filter;                     // For: "if" condition; SetBlock: unused
  Body body;                          // For, SetBlock, Macro, CallBlock
  Body else_body;                     // For ... else
  bool recursive = false;
  std::string name;                   // Macro name
  std::vector<std::pair<std::string, ExprPtr>> params;  // Macro parameters (default or null)
};

// Parses a template into statements. Throws tessera::Error naming the line and the construct.
Body parse(std::string_view source);

}  // namespace tessera::tok::jinja
