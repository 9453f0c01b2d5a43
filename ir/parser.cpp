// parse_graph: a lexer and a recursive-descent parser for the textual form (docs/ir.md gives
// the grammar). Values get ids in the order the text defines them; the verifier runs last.
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "ir/error.h"
#include "ir/text.h"
#include "ir/verifier.h"

namespace rwkvc {

namespace {

struct Token {
  enum class Kind { identifier, value, string, number, punct, end };
  Kind kind;
  std::string text;  // identifier, value name (without '%'), string contents, number or punctuation
  int line;
  int column;
};

// How a message names a token: "'=', "end of input", "%x", ...
std::string describe(const Token& t) {
  switch (t.kind) {
    case Token::Kind::identifier:
    case Token::Kind::punct:
    case Token::Kind::number: return fmt::format("'{}'", t.text);
    case Token::Kind::value: return "%" + t.text;
    case Token::Kind::string: return fmt::format("the string \"{}\"", t.text);
    case Token::Kind::end: return "end of input";
  }
  return "?";
}

[[noreturn]] void error_at(int line, int column, std::string_view message) {
  throw IrError(fmt::format("line {}, column {}: {}", line, column, message));
}

bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_char(char c) { return is_letter(c) || is_digit(c) || c == '.' || c == '-'; }

class Lexer {
 public:
  explicit Lexer(std::string_view text) : text_(text) {}

  std::vector<Token> tokens() {
    std::vector<Token> out;
    for (;;) {
      skip_space_and_comments();
      Token t{Token::Kind::end, "", line_, column_};
      if (at_end()) {
        out.push_back(std::move(t));
        return out;
      }
      char c = peek();
      if (is_letter(c)) {
        t.kind = Token::Kind::identifier;
        while (!at_end() && (is_letter(peek()) || is_digit(peek()))) t.text += take();
        if (t.text == "inf" || t.text == "nan") t.kind = Token::Kind::number;
      } else if (is_digit(c) || c == '-') {
        t.kind = Token::Kind::number;
        lex_number(t.text);
      } else if (c == '%') {
        take();
        t.kind = Token::Kind::value;
        while (!at_end() && is_name_char(peek())) t.text += take();
        if (t.text.empty()) error_at(t.line, t.column, "expected a value name after '%'");
      } else if (c == '"') {
        t.kind = Token::Kind::string;
        lex_string(t);
      } else if (std::string_view("{}()[],=:^@").find(c) != std::string_view::npos) {
        t.kind = Token::Kind::punct;
        t.text = take();
      } else {
        error_at(line_, column_, fmt::format("unexpected character '{}'", c));
      }
      out.push_back(std::move(t));
    }
  }

 private:
  bool at_end() const { return pos_ >= text_.size(); }
  char peek(std::size_t ahead = 0) const { return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0'; }
  char take() {
    char c = text_[pos_++];
    if (c == '\n') {
      ++line_;
      column_ = 1;
    } else {
      ++column_;
    }
    return c;
  }

  void skip_space_and_comments() {
    while (!at_end()) {
      char c = peek();
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
        take();
      } else if (c == '/' && peek(1) == '/') {
        while (!at_end() && peek() != '\n') take();
      } else {
        return;
      }
    }
  }

  // A sign, then digits, letters and dots, with a sign allowed right after an exponent's 'e':
  // "-1e+30", "0.5", "-inf". The parser decides whether it is a valid integer or float.
  void lex_number(std::string& text) {
    text += take();
    while (!at_end()) {
      char c = peek();
      bool exponent_sign = (c == '+' || c == '-') && (text.back() == 'e' || text.back() == 'E');
      if (!is_letter(c) && !is_digit(c) && c != '.' && !exponent_sign) return;
      text += take();
    }
  }

  void lex_string(Token& t) {
    take();  // the opening quote
    for (;;) {
      if (at_end() || peek() == '\n') error_at(t.line, t.column, "unterminated string");
      char c = take();
      if (c == '"') return;
      if (c != '\\') {
        t.text += c;
        continue;
      }
      char escaped = at_end() ? '\0' : take();
      if (escaped == '"' || escaped == '\\') {
        t.text += escaped;
      } else if (escaped == 'x' && std::isxdigit(static_cast<unsigned char>(peek())) &&
                 std::isxdigit(static_cast<unsigned char>(peek(1)))) {
        char hex[2] = {take(), take()};
        unsigned byte = 0;
        std::from_chars(hex, hex + 2, byte, 16);
        t.text += static_cast<char>(byte);
      } else {
        error_at(line_, column_ - 1, "unknown escape in string (use \\\", \\\\ or \\xHH)");
      }
    }
  }

  std::string_view text_;
  std::size_t pos_ = 0;
  int line_ = 1;
  int column_ = 1;
};

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  Graph parse() {
    expect_keyword("graph");
    if (peek().kind == Token::Kind::string) graph_.name = take().text;
    else graph_.name = expect(Token::Kind::identifier, "a graph name").text;
    expect_punct('{');
    while (!is_punct(peek(), '}')) parse_statement();
    take();
    if (peek().kind != Token::Kind::end)
      error(peek(), fmt::format("expected end of input after '}}', found {}", describe(peek())));
    if (std::string problem = verify_error(graph_); !problem.empty()) throw IrError(locate(problem));
    return std::move(graph_);
  }

 private:
  static bool is_punct(const Token& t, char c) { return t.kind == Token::Kind::punct && t.text[0] == c; }
  const Token& peek() const { return tokens_[pos_]; }
  const Token& take() { return pos_ + 1 < tokens_.size() ? tokens_[pos_++] : tokens_[pos_]; }

  [[noreturn]] static void error(const Token& t, std::string_view message) { error_at(t.line, t.column, message); }

  const Token& expect(Token::Kind kind, std::string_view what) {
    if (peek().kind != kind) error(peek(), fmt::format("expected {}, found {}", what, describe(peek())));
    return take();
  }
  void expect_punct(char c) {
    if (!is_punct(peek(), c)) error(peek(), fmt::format("expected '{}', found {}", c, describe(peek())));
    take();
  }
  bool accept_punct(char c) {
    if (!is_punct(peek(), c)) return false;
    take();
    return true;
  }
  void expect_keyword(std::string_view word) {
    if (peek().kind != Token::Kind::identifier || peek().text != word)
      error(peek(), fmt::format("expected '{}', found {}", word, describe(peek())));
    take();
  }

  void parse_statement() {
    const Token& first = peek();
    if (first.kind == Token::Kind::value) return parse_op();
    if (first.kind == Token::Kind::identifier) {
      if (first.text == "input") return parse_input();
      if (first.text == "weight") return parse_weight();
      if (first.text == "state") return parse_state();
      if (first.text == "output") return parse_logits();
      if (first.text == "state_out") return parse_state_out();
    }
    error(first, fmt::format("expected a declaration (input, weight, state, output, state_out), an op "
                             "(%result = ...) or '}}', found {}",
                             describe(first)));
  }

  // input %tokens : i32[T]
  void parse_input() {
    const Token& keyword = take();
    const Token& name = expect(Token::Kind::value, "the tokens value (%name)");
    expect_punct(':');
    TensorType type = parse_type();
    if (graph_.tokens != kNoValue) error(keyword, "the graph already has a tokens input");
    graph_.tokens = define(name, std::move(type));
  }

  // weight %name = "checkpoint key" : type
  void parse_weight() {
    take();
    const Token& name = expect(Token::Kind::value, "the weight's value (%name)");
    expect_punct('=');
    std::string key = expect(Token::Kind::string, "the weight's checkpoint key (a string)").text;
    expect_punct(':');
    TensorType type = parse_type();
    graph_.weights.push_back(WeightDecl{define(name, std::move(type)), std::move(key)});
  }

  // state %name = "slot" init 0.0 : type
  void parse_state() {
    take();
    const Token& name = expect(Token::Kind::value, "the state's value (%name)");
    expect_punct('=');
    std::string slot = expect(Token::Kind::string, "the state's slot name (a string)").text;
    expect_keyword("init");
    double init = parse_number_as_double();
    expect_punct(':');
    TensorType type = parse_type();
    graph_.states.push_back(StateDecl{std::move(slot), define(name, std::move(type)), kNoValue, init});
  }

  // output logits = %value
  void parse_logits() {
    const Token& keyword = take();
    expect_keyword("logits");
    expect_punct('=');
    ValueId value = use(expect(Token::Kind::value, "the logits value (%name)"));
    if (graph_.logits != kNoValue) error(keyword, "the graph already has a logits output");
    graph_.logits = value;
  }

  // state_out "slot" = %value
  void parse_state_out() {
    take();
    const Token& slot = expect(Token::Kind::string, "a state slot name (a string)");
    expect_punct('=');
    ValueId value = use(expect(Token::Kind::value, "the state's next value (%name)"));
    for (StateDecl& s : graph_.states) {
      if (s.slot != slot.text) continue;
      if (s.output != kNoValue) error(slot, fmt::format("state '{}' already has an output", slot.text));
      s.output = value;
      return;
    }
    error(slot, fmt::format("no state slot '{}' is declared above", slot.text));
  }

  // Where an op's values live: the graph, or a region's body.
  struct Scope {
    std::function<ValueId(const Token&)> use;
    std::function<ValueId(const Token&, TensorType)> define;
    bool plans_buffers = false;  // the graph's values may carry "@buffer"; a region body's may not
  };

  void parse_op() {
    int line = peek().line;
    Scope graph_scope{[this](const Token& t) { return use(t); },
                      [this](const Token& t, TensorType type) { return define(t, std::move(type)); }, true};
    Op op = parse_op_in(graph_scope);
    op_lines_.push_back(line);
    graph_.ops.push_back(std::move(op));
  }

  // %a, %b = opname(%x, %y) {key = value, ...} : type, type
  // %a, %b = region "kind"(%x, %y) { ^(%0 : type, ...): ops... yield %i, ... } : type, type
  Op parse_op_in(const Scope& scope) {
    std::vector<const Token*> results;
    do {
      results.push_back(&expect(Token::Kind::value, "a result name (%name)"));
    } while (accept_punct(','));
    expect_punct('=');
    const Token& name = expect(Token::Kind::identifier, "an op name");
    std::optional<OpKind> kind = parse_op_kind(name.text);
    if (!kind) error(name, fmt::format("unknown op '{}'", name.text));
    Op op{*kind, {}, {}, {}};
    std::string region_kind;
    if (*kind == OpKind::region) region_kind = expect(Token::Kind::string, "the region's kind (a string)").text;

    expect_punct('(');
    if (!accept_punct(')')) {
      do {
        op.operands.push_back(scope.use(expect(Token::Kind::value, "an operand (%name)")));
      } while (accept_punct(','));
      expect_punct(')');
    }
    if (*kind == OpKind::region) {
      op.region = parse_body(std::move(region_kind));
    } else if (accept_punct('{') && !accept_punct('}')) {
      do {
        parse_attr(op.attrs);
      } while (accept_punct(','));
      expect_punct('}');
    }
    expect_punct(':');
    std::vector<TensorType> types;
    std::vector<std::int32_t> buffers;
    do {
      types.push_back(parse_type());
      buffers.push_back(accept_punct('@') ? parse_buffer(scope) : kNoBuffer);
    } while (accept_punct(','));
    if (types.size() != results.size())
      error(name, fmt::format("{} names {} result(s) but gives {} type(s)", name.text, results.size(), types.size()));
    for (std::size_t i = 0; i < results.size(); ++i) {
      op.results.push_back(scope.define(*results[i], std::move(types[i])));
      if (buffers[i] != kNoBuffer) graph_.values[static_cast<std::size_t>(op.results[i])].buffer = buffers[i];
    }
    return op;
  }

  // The number after '@' in "f32[T, 64] @3".
  std::int32_t parse_buffer(const Scope& scope) {
    const Token& t = expect(Token::Kind::number, "a buffer number after '@'");
    if (!scope.plans_buffers) error(t, "values inside a region body live in the kernel, not in planned buffers");
    std::optional<std::int64_t> n = as_integer(t);
    if (!n || *n < 0 || *n > INT32_MAX) error(t, fmt::format("a buffer number must be a non-negative integer, found {}", t.text));
    return static_cast<std::int32_t>(*n);
  }

  // { ^(%0 : type, ...): ops... yield %i, ... }: body values are named by their local number,
  // in order, so that the text and the region's value table agree.
  std::shared_ptr<const Region> parse_body(std::string kind) {
    auto region = std::make_shared<Region>();
    region->kind = std::move(kind);
    std::vector<int> lines;
    Scope body{[&](const Token& t) {
                 std::size_t id = 0;
                 auto [stop, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), id);
                 if (ec != std::errc() || stop != t.text.data() + t.text.size() || id >= region->values.size())
                   error(t, fmt::format("undefined value %{} in the region body", t.text));
                 return static_cast<ValueId>(id);
               },
               [&](const Token& t, TensorType type) {
                 std::string expected = std::to_string(region->values.size());
                 if (t.text != expected)
                   error(t, fmt::format("region body values are numbered in order: expected %{}, found %{}", expected,
                                        t.text));
                 region->values.push_back(std::move(type));
                 return static_cast<ValueId>(region->values.size() - 1);
               }};
    expect_punct('{');
    expect_punct('^');
    expect_punct('(');
    if (!accept_punct(')')) {
      do {
        const Token& argument = expect(Token::Kind::value, "a body argument (%0)");
        expect_punct(':');
        body.define(argument, parse_type());
      } while (accept_punct(','));
      expect_punct(')');
    }
    expect_punct(':');
    region->arguments = region->values.size();
    while (peek().kind == Token::Kind::value) region->ops.push_back(parse_op_in(body));
    expect_keyword("yield");
    if (peek().kind == Token::Kind::value) {
      do {
        region->yields.push_back(body.use(expect(Token::Kind::value, "a yielded value (%i)")));
      } while (accept_punct(','));
    }
    expect_punct('}');
    return region;
  }

  void parse_attr(Attrs& attrs) {
    const Token& key = expect(Token::Kind::identifier, "an attribute name");
    expect_punct('=');
    AttrValue value;
    if (is_punct(peek(), '[')) {
      value = parse_dim_list(true);
    } else {
      const Token& number = expect(Token::Kind::number, "an attribute value (a number or [list])");
      if (auto integer = as_integer(number)) value = *integer;
      else value = as_double(number);
    }
    if (!attrs.emplace(key.text, std::move(value)).second)
      error(key, fmt::format("attribute '{}' is given twice", key.text));
  }

  // f32[T, 64]
  TensorType parse_type() {
    const Token& dtype_token = expect(Token::Kind::identifier, "a type such as f32[T, 64]");
    std::optional<DType> dtype = parse_dtype(dtype_token.text);
    if (!dtype) error(dtype_token, fmt::format("unknown element type '{}'", dtype_token.text));
    return TensorType{*dtype, Shape(parse_dim_list(false))};
  }

  // [T, 2, 32]: integers, or T for the sequence length.
  std::vector<Dim> parse_dim_list(bool allow_negative) {
    expect_punct('[');
    std::vector<Dim> dims;
    if (accept_punct(']')) return dims;
    do {
      const Token& t = peek();
      if (t.kind == Token::Kind::identifier && t.text == "T") {
        dims.push_back(kSeq);
      } else if (std::optional<std::int64_t> n = t.kind == Token::Kind::number ? as_integer(t) : std::nullopt) {
        if (!allow_negative && *n < 0) error(t, fmt::format("a dimension must be T or non-negative, found {}", *n));
        dims.push_back(*n);
      } else {
        error(t, fmt::format("expected a dimension (an integer or T), found {}", describe(t)));
      }
      take();
    } while (accept_punct(','));
    expect_punct(']');
    return dims;
  }

  double parse_number_as_double() {
    const Token& t = expect(Token::Kind::number, "a number");
    if (auto integer = as_integer(t)) return static_cast<double>(*integer);
    return as_double(t);
  }

  // A number token without '.', exponent, inf or nan is an integer.
  static std::optional<std::int64_t> as_integer(const Token& t) {
    std::int64_t value = 0;
    const char* end = t.text.data() + t.text.size();
    auto [stop, ec] = std::from_chars(t.text.data(), end, value);
    if (stop != end) return std::nullopt;
    if (ec == std::errc::result_out_of_range) error(t, fmt::format("integer {} is out of range", t.text));
    return value;
  }

  static double as_double(const Token& t) {
    double value = 0;
    const char* end = t.text.data() + t.text.size();
    auto [stop, ec] = std::from_chars(t.text.data(), end, value);
    if (ec == std::errc::result_out_of_range) error(t, fmt::format("number {} is out of range", t.text));
    if (ec != std::errc() || stop != end) error(t, fmt::format("malformed number '{}'", t.text));
    return value;
  }

  ValueId define(const Token& name, TensorType type) {
    auto [it, inserted] = ids_.emplace(name.text, static_cast<ValueId>(graph_.values.size()));
    if (!inserted)
      error(name, fmt::format("%{} is already defined (line {})", name.text, value_lines_[it->second]));
    graph_.values.push_back(Value{name.text, std::move(type)});
    value_lines_.push_back(name.line);
    return it->second;
  }

  ValueId use(const Token& name) const {
    auto it = ids_.find(name.text);
    if (it == ids_.end()) error(name, fmt::format("undefined value %{}", name.text));
    return it->second;
  }

  // The verifier names ops by index ("op #12 ..."): point at that op's line.
  std::string locate(const std::string& problem) const {
    std::size_t index = 0;
    if (std::sscanf(problem.c_str(), "op #%zu ", &index) == 1 && index < op_lines_.size())
      return fmt::format("line {}: {}", op_lines_[index], problem);
    return problem;
  }

  std::vector<Token> tokens_;
  std::size_t pos_ = 0;
  Graph graph_;
  std::map<std::string, ValueId, std::less<>> ids_;
  std::vector<int> value_lines_;  // per value: the line defining it
  std::vector<int> op_lines_;     // per op: the line it starts on
};

}  // namespace

Graph parse_graph(std::string_view text) { return Parser(Lexer(text).tokens()).parse(); }

}  // namespace rwkvc
