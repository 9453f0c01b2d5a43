// print_graph: one declaration or op per line, in value-id order, so that parse_graph (which
// numbers values as it meets them) rebuilds the same value table. docs/ir.md gives the grammar.
#include <functional>

#include <fmt/format.h>

#include "ir/text.h"

namespace rwkvc {

namespace {

bool is_identifier(std::string_view s) {
  auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (s.empty() || !letter(s[0]) || s == "inf" || s == "nan") return false;  // those read as numbers
  for (char c : s)
    if (!letter(c) && !(c >= '0' && c <= '9')) return false;
  return true;
}

std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') out += {'\\', c};
    else if (byte < 0x20 || byte == 0x7f) out += fmt::format("\\x{:02x}", byte);
    else out += c;
  }
  return out + "\"";
}

// Shortest text that reads back to the same double; an integral value gets ".0" so that it
// reads back as a float, not an integer ("inf" and "nan" already do).
std::string float_text(double value) {
  std::string s = fmt::format("{}", value);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

std::string attr_text(const AttrValue& value) {
  if (auto* i = std::get_if<std::int64_t>(&value)) return std::to_string(*i);
  if (auto* f = std::get_if<double>(&value)) return float_text(*f);
  return to_string(Shape(std::get<std::vector<std::int64_t>>(value)));  // "[T, 2, 32]"
}

using NameOf = std::function<std::string(ValueId)>;

std::string ref_list(const std::vector<ValueId>& ids, const NameOf& ref) {
  std::string s;
  for (ValueId id : ids) s += (s.empty() ? "" : ", ") + ref(id);
  return s;
}

// One op (a region: several lines, its body indented two more spaces), ending in a newline.
// `ref` and `type` name and type the values of the scope the op lives in.
std::string op_text(const Op& op, const NameOf& ref, const NameOf& type, const std::string& indent) {
  std::string line = fmt::format("{}{} = {}", indent, ref_list(op.results, ref), op_name(op.kind));
  if (op.region) line += fmt::format(" {}", quoted(op.region->kind));
  line += fmt::format("({})", ref_list(op.operands, ref));
  if (!op.attrs.empty()) {
    std::string attrs;
    for (const auto& [key, value] : op.attrs) attrs += (attrs.empty() ? "" : ", ") + key + " = " + attr_text(value);
    line += " {" + attrs + "}";
  }
  if (op.region) {
    const Region& r = *op.region;
    auto exists = [&](ValueId id) { return id >= 0 && static_cast<std::size_t>(id) < r.values.size(); };
    NameOf local_ref = [](ValueId id) { return fmt::format("%{}", id); };
    NameOf local_type = [&](ValueId id) {
      return exists(id) ? to_string(r.values[static_cast<std::size_t>(id)]) : std::string("?");
    };
    std::string inner = indent + "  ";
    std::string arguments;
    for (std::size_t i = 0; i < r.arguments && i < r.values.size(); ++i)
      arguments += fmt::format("{}%{} : {}", i ? ", " : "", i, to_string(r.values[i]));
    line += " {\n" + inner + "^(" + arguments + "):\n";
    for (const Op& body_op : r.ops) line += op_text(body_op, local_ref, local_type, inner);
    line += inner + "yield " + ref_list(r.yields, local_ref) + "\n" + indent + "}";
  }
  std::string types;
  for (ValueId id : op.results) types += (types.empty() ? "" : ", ") + type(id);
  return line + " : " + types + "\n";
}

class Printer {
 public:
  explicit Printer(const Graph& graph) : g_(graph), decl_line_(graph.values.size()), printed_(graph.values.size()) {}

  std::string print() {
    auto declare = [&](ValueId id, std::string line) {
      if (exists(id)) decl_line_[id] = std::move(line);
    };
    declare(g_.tokens, fmt::format("input {} : {}", g_.ref(g_.tokens), type_text(g_.tokens)));
    for (const WeightDecl& w : g_.weights)
      declare(w.value, fmt::format("weight {} = {} : {}", g_.ref(w.value), quoted(w.key), type_text(w.value)));
    for (const StateDecl& s : g_.states)
      declare(s.input, fmt::format("state {} = {} init {} : {}", g_.ref(s.input), quoted(s.slot), float_text(s.init),
                                   type_text(s.input)));

    out_ = fmt::format("graph {} {{\n", is_identifier(g_.name) ? g_.name : quoted(g_.name));
    for (const Op& op : g_.ops) {
      // Declarations numbered before the op's results come first; so does any declaration the
      // op reads, which keeps the text define-before-use even for a graph numbered otherwise.
      ValueId first_result = op.results.empty() ? 0 : op.results[0];
      for (ValueId id = 0; id < first_result; ++id) print_declaration(id);
      for (ValueId id : op.operands) print_declaration(id);
      print_op(op);
    }
    for (ValueId id = 0; static_cast<std::size_t>(id) < g_.values.size(); ++id) print_declaration(id);

    if (g_.logits != kNoValue) out_ += fmt::format("  output logits = {}\n", g_.ref(g_.logits));
    for (const StateDecl& s : g_.states)
      if (s.output != kNoValue) out_ += fmt::format("  state_out {} = {}\n", quoted(s.slot), g_.ref(s.output));
    return out_ + "}\n";
  }

 private:
  bool exists(ValueId id) const { return id >= 0 && static_cast<std::size_t>(id) < g_.values.size(); }
  // Malformed graphs print too (for messages and debugging): an unknown id shows as "?".
  std::string type_text(ValueId id) const { return exists(id) ? to_string(g_.type(id)) : "?"; }

  void print_declaration(ValueId id) {
    if (!exists(id) || printed_[id] || decl_line_[id].empty()) return;
    printed_[id] = true;
    out_ += "  " + decl_line_[id] + "\n";
  }

  void print_op(const Op& op) {
    auto planned_type = [&](ValueId id) {
      std::string text = type_text(id);
      if (exists(id) && g_.value(id).buffer != kNoBuffer) text += fmt::format(" @{}", g_.value(id).buffer);
      return text;
    };
    out_ += op_text(op, [&](ValueId id) { return g_.ref(id); }, planned_type, "  ");
  }

  const Graph& g_;
  std::vector<std::string> decl_line_;  // per value: its declaration's text, empty for op results
  std::vector<bool> printed_;
  std::string out_;
};

}  // namespace

std::string print_graph(const Graph& graph) { return Printer(graph).print(); }

}  // namespace rwkvc
