// The graph verifier: checks run in a fixed order (names, definitions, interface inputs, ops in
// execution order, interface outputs) and stop at the first problem, so a message always
// describes the earliest thing to fix.
#include "ir/verifier.h"

#include "ir/liveness.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "ir/error.h"
#include "ir/liveness.h"

namespace rwkvc {

namespace {

struct Problem {
  std::string message;
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Problem{fmt::format(format, std::forward<Args>(args)...)};
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
         c == '-';
}

std::string_view attr_kind_name(AttrKind kind) {
  switch (kind) {
    case AttrKind::integer: return "an integer";
    case AttrKind::floating: return "a float";
    case AttrKind::ints: return "an integer list";
  }
  return "?";
}

bool holds_kind(const AttrValue& value, AttrKind kind) {
  switch (kind) {
    case AttrKind::integer: return std::holds_alternative<std::int64_t>(value);
    case AttrKind::floating: return std::holds_alternative<double>(value);
    case AttrKind::ints: return std::holds_alternative<std::vector<std::int64_t>>(value);
  }
  return false;
}

std::string describe(const AttrValue& value) {
  if (auto* i = std::get_if<std::int64_t>(&value)) return fmt::format("the integer {}", *i);
  if (auto* f = std::get_if<double>(&value)) return fmt::format("the float {}", *f);
  return "the list " + to_string(Shape(std::get<std::vector<std::int64_t>>(value)));
}

// A region's body, checked like a graph of its own: arguments match the operands, each op's
// operands are defined before it and its results have the inferred types (nested regions
// recurse), and the yields give the region's result types. Messages name the body op by its
// index and first local value ("body op #3 mul (%5)").
void check_body(const Region* region, std::span<const TensorType> operands, std::span<const TensorType> results) {
  if (region == nullptr) fail("has no body");
  const Region& r = *region;
  auto exists = [&](ValueId id) { return id >= 0 && static_cast<std::size_t>(id) < r.values.size(); };
  if (r.arguments != operands.size())
    fail("the body has {} argument(s) for {} operand(s)", r.arguments, operands.size());
  if (r.values.size() < r.arguments) fail("the body declares {} argument(s) but only {} value(s)", r.arguments, r.values.size());
  for (std::size_t i = 0; i < operands.size(); ++i)
    if (r.values[i] != operands[i])
      fail("body argument %{} has type {}, but operand {} is {}", i, to_string(r.values[i]), i, to_string(operands[i]));

  std::vector<bool> defined(r.values.size(), false);
  std::fill(defined.begin(), defined.begin() + static_cast<std::ptrdiff_t>(r.arguments), true);
  for (std::size_t i = 0; i < r.ops.size(); ++i) {
    const Op& op = r.ops[i];
    std::string label = fmt::format("body op #{} {}", i, op_name(op.kind));
    if (!op.results.empty()) label += fmt::format(" (%{})", op.results[0]);
    std::vector<TensorType> operand_types;
    for (std::size_t k = 0; k < op.operands.size(); ++k) {
      ValueId id = op.operands[k];
      if (!exists(id) || !defined[static_cast<std::size_t>(id)])
        fail("{}: operand {} %{} is not defined before it in the body", label, k, id);
      operand_types.push_back(r.values[static_cast<std::size_t>(id)]);
    }
    std::vector<TensorType> result_types;
    for (ValueId id : op.results) {
      if (!exists(id)) fail("{}: result %{} is outside the body's {} values", label, id, r.values.size());
      if (defined[static_cast<std::size_t>(id)]) fail("{}: result %{} is defined twice", label, id);
      result_types.push_back(r.values[static_cast<std::size_t>(id)]);
    }
    if (op.kind == OpKind::region) {
      try {
        check_body(op.region.get(), operand_types, result_types);
      } catch (const Problem& p) {
        fail("{}: {}", label, p.message);
      }
    } else {
      if (op.region) fail("{}: only a region op has a body", label);
      const OpInfo& info = op_info(op.kind);
      if (info.num_results >= 0 && op.results.size() != static_cast<std::size_t>(info.num_results))
        fail("{}: expects {} results, got {}", label, info.num_results, op.results.size());
      InferredTypes inferred = infer_result_types(op.kind, operand_types, op.attrs);
      if (!inferred.error.empty()) fail("{}: {}", label, inferred.error);
      for (std::size_t k = 0; k < op.results.size(); ++k)
        if (result_types[k] != inferred.types[k])
          fail("{}: result {} %{} has type {}, but the operands give {}", label, k, op.results[k],
               to_string(result_types[k]), to_string(inferred.types[k]));
    }
    for (ValueId id : op.results) defined[static_cast<std::size_t>(id)] = true;
  }
  for (std::size_t id = 0; id < r.values.size(); ++id)
    if (!defined[id]) fail("body value %{} is defined by no argument and no op", id);
  if (r.yields.size() != results.size())
    fail("the body yields {} value(s) for {} result(s)", r.yields.size(), results.size());
  for (std::size_t k = 0; k < results.size(); ++k) {
    if (!exists(r.yields[k])) fail("yield {} is %{}, which the body does not define", k, r.yields[k]);
    if (r.values[static_cast<std::size_t>(r.yields[k])] != results[k])
      fail("yield {} %{} has type {}, but result {} is {}", k, r.yields[k],
           to_string(r.values[static_cast<std::size_t>(r.yields[k])]), k, to_string(results[k]));
  }
}

class Verifier {
 public:
  explicit Verifier(const Graph& graph) : g_(graph), definer_(graph.values.size()), defined_(graph.values.size()) {}

  void run() {
    check_names();
    record_definitions();
    check_inputs();
    for (std::size_t i = 0; i < g_.ops.size(); ++i) check_op(i);
    check_outputs();
    check_buffers();
  }

 private:
  bool exists(ValueId id) const { return id >= 0 && static_cast<std::size_t>(id) < g_.values.size(); }
  std::size_t index(ValueId id) const { return static_cast<std::size_t>(id); }

  // "op #12 matmul (%blocks.0.att.r)"
  std::string op_label(std::size_t i) const {
    const Op& op = g_.ops[i];
    std::string label = fmt::format("op #{} {}", i, op_name(op.kind));
    if (op.region) label += fmt::format(" \"{}\"", op.region->kind);
    if (!op.results.empty()) label += fmt::format(" ({})", g_.ref(op.results[0]));
    return label;
  }

  void check_names() const {
    std::map<std::string_view, std::size_t> first_use;
    for (std::size_t id = 0; id < g_.values.size(); ++id) {
      const std::string& name = g_.values[id].name;
      if (name.empty()) fail("value #{} has an empty name", id);
      for (char c : name)
        if (!is_name_char(c)) fail("value #{} '{}': the character '{}' is outside [A-Za-z0-9_.-]", id, name, c);
      auto [it, inserted] = first_use.emplace(name, id);
      if (!inserted) fail("value name %{} is used twice: values #{} and #{}", name, it->second, id);
    }
  }

  // Every value has exactly one definer: the tokens input, a weight, a state input or an op.
  void define(ValueId id, const std::string& definer) {
    if (!exists(id)) fail("{} defines value #{}, which does not exist", definer, id);
    if (!definer_[index(id)].empty())
      fail("value {} is defined twice: by {} and by {}", g_.ref(id), definer_[index(id)], definer);
    definer_[index(id)] = definer;
  }

  void record_definitions() {
    if (g_.tokens != kNoValue) define(g_.tokens, "the tokens input");
    for (const WeightDecl& w : g_.weights) define(w.value, fmt::format("weight '{}'", w.key));
    for (const StateDecl& s : g_.states) define(s.input, fmt::format("state '{}'", s.slot));
    for (std::size_t i = 0; i < g_.ops.size(); ++i) {
      if (g_.ops[i].kind != OpKind::region && static_cast<std::size_t>(g_.ops[i].kind) >= all_ops().size())
        fail("op #{} has no kind in the op table ({})", i, static_cast<int>(g_.ops[i].kind));
      for (ValueId r : g_.ops[i].results) define(r, op_label(i));
    }
    for (std::size_t id = 0; id < g_.values.size(); ++id)
      if (definer_[id].empty()) fail("value %{} (#{}) is defined by no declaration and no op", g_.values[id].name, id);
  }

  // Tokens, weights and state inputs are defined before the first op runs.
  void check_inputs() {
    if (g_.tokens != kNoValue) {
      if (g_.type(g_.tokens) != TensorType{DType::i32, Shape{kSeq}})
        fail("tokens input {} has type {}, expected i32[T]", g_.ref(g_.tokens), to_string(g_.type(g_.tokens)));
      defined_[index(g_.tokens)] = true;
    }
    std::map<std::string_view, ValueId> keys;
    for (const WeightDecl& w : g_.weights) {
      if (w.key.empty()) fail("weight {} has an empty key", g_.ref(w.value));
      auto [it, inserted] = keys.emplace(w.key, w.value);
      if (!inserted) fail("weight key '{}' is declared twice: {} and {}", w.key, g_.ref(it->second), g_.ref(w.value));
      if (g_.type(w.value).shape.has_seq())
        fail("weight '{}' ({}) has type {}: a weight's shape cannot depend on T", w.key, g_.ref(w.value),
             to_string(g_.type(w.value)));
      defined_[index(w.value)] = true;
    }
    std::map<std::string_view, ValueId> slots;
    for (const StateDecl& s : g_.states) {
      if (s.slot.empty()) fail("state {} has an empty slot name", g_.ref(s.input));
      auto [it, inserted] = slots.emplace(s.slot, s.input);
      if (!inserted) fail("state slot '{}' is declared twice: {} and {}", s.slot, g_.ref(it->second), g_.ref(s.input));
      const TensorType& type = g_.type(s.input);
      if (type.dtype != DType::f32 || type.shape.has_seq())
        fail("state '{}' ({}) has type {}: a state is f32 with a shape that cannot depend on T", s.slot,
             g_.ref(s.input), to_string(type));
      defined_[index(s.input)] = true;
    }
  }

  void check_attrs(std::size_t i) const {
    const Op& op = g_.ops[i];
    std::span<const AttrSpec> specs = op_attr_specs(op.kind);
    for (const AttrSpec& spec : specs) {
      auto it = op.attrs.find(spec.key);
      if (it == op.attrs.end())
        fail("{}: missing attribute '{}' ({})", op_label(i), spec.key, attr_kind_name(spec.kind));
      if (!holds_kind(it->second, spec.kind))
        fail("{}: attribute '{}' must be {}, got {}", op_label(i), spec.key, attr_kind_name(spec.kind),
             describe(it->second));
    }
    for (const auto& [key, value] : op.attrs) {
      bool known = false;
      for (const AttrSpec& spec : specs) known |= spec.key == key;
      if (!known) fail("{}: unknown attribute '{}'", op_label(i), key);
    }
  }

  void check_op(std::size_t i) {
    const Op& op = g_.ops[i];
    const OpInfo& info = op_info(op.kind);
    if (info.num_operands >= 0 && op.operands.size() != static_cast<std::size_t>(info.num_operands))
      fail("{}: expects {} operands, got {}", op_label(i), info.num_operands, op.operands.size());
    if (info.num_results >= 0 && op.results.size() != static_cast<std::size_t>(info.num_results))
      fail("{}: expects {} results, got {}", op_label(i), info.num_results, op.results.size());

    std::vector<TensorType> operand_types;
    for (std::size_t k = 0; k < op.operands.size(); ++k) {
      ValueId id = op.operands[k];
      if (!exists(id)) fail("{}: operand {} is value #{}, which does not exist", op_label(i), k, id);
      if (!defined_[index(id)])
        fail("{}: operand {} {} is used before its definition by {}", op_label(i), k, g_.ref(id), definer_[index(id)]);
      operand_types.push_back(g_.type(id));
    }
    check_attrs(i);

    if (op.kind == OpKind::region || op.region) {
      if (op.kind != OpKind::region) fail("{}: only a region op has a body", op_label(i));
      std::vector<TensorType> result_types;
      for (ValueId r : op.results) {
        if (!exists(r)) fail("{}: result is value #{}, which does not exist", op_label(i), r);
        result_types.push_back(g_.type(r));
      }
      try {
        check_body(op.region.get(), operand_types, result_types);
      } catch (const Problem& p) {
        fail("{}: {}", op_label(i), p.message);
      }
      for (ValueId r : op.results) defined_[index(r)] = true;
      return;
    }

    InferredTypes inferred = infer_result_types(op.kind, operand_types, op.attrs);
    if (!inferred.error.empty()) fail("{}: {}", op_label(i), inferred.error);
    for (std::size_t k = 0; k < op.results.size(); ++k) {
      const TensorType& declared = g_.type(op.results[k]);
      if (declared != inferred.types[k])
        fail("{}: result {} {} has type {}, but the operands give {}", op_label(i), k, g_.ref(op.results[k]),
             to_string(declared), to_string(inferred.types[k]));
    }
    for (ValueId r : op.results) defined_[index(r)] = true;
  }

  void check_outputs() const {
    for (const StateDecl& s : g_.states) {
      if (s.output == kNoValue) fail("state '{}' has no output: nothing writes its next value", s.slot);
      if (!exists(s.output)) fail("state '{}': output is value #{}, which does not exist", s.slot, s.output);
      if (g_.type(s.output) != g_.type(s.input))
        fail("state '{}': output {} has type {}, expected {}", s.slot, g_.ref(s.output), to_string(g_.type(s.output)),
             to_string(g_.type(s.input)));
    }
    if (g_.logits != kNoValue) {
      if (!exists(g_.logits)) fail("logits is value #{}, which does not exist", g_.logits);
      if (!is_float(g_.type(g_.logits).dtype))
        fail("logits {} has type {}, expected a float type", g_.ref(g_.logits), to_string(g_.type(g_.logits)));
    }
  }

  // plan-memory's placement: only op results sit in buffers, and two values whose lifetimes
  // overlap never share one.
  void check_buffers() const {
    std::vector<std::size_t> definer_op(g_.values.size(), g_.ops.size());
    for (std::size_t i = 0; i < g_.ops.size(); ++i)
      for (ValueId r : g_.ops[i].results) definer_op[index(r)] = i;
    std::map<std::int32_t, std::vector<ValueId>> by_buffer;
    for (std::size_t id = 0; id < g_.values.size(); ++id) {
      std::int32_t buffer = g_.values[id].buffer;
      if (buffer == kNoBuffer) continue;
      if (buffer < 0) fail("value %{} has buffer {}: buffers are numbered from 0", g_.values[id].name, buffer);
      if (definer_op[id] == g_.ops.size())
        fail("value %{} is placed in buffer {}, but only op results live in planned buffers", g_.values[id].name, buffer);
      if (!is_plannable(g_, g_.ops[definer_op[id]]))
        fail("value %{} is placed in buffer {}, but {} is a view of its operand's storage", g_.values[id].name, buffer,
             op_label(definer_op[id]));
      by_buffer[buffer].push_back(static_cast<ValueId>(id));
    }
    if (by_buffer.empty()) return;
    std::vector<LiveRange> ranges = live_ranges(g_);
    for (auto& [buffer, values] : by_buffer) {
      std::sort(values.begin(), values.end(),
                [&](ValueId a, ValueId b) { return ranges[index(a)].first < ranges[index(b)].first; });
      for (std::size_t k = 1; k < values.size(); ++k) {
        const LiveRange& before = ranges[index(values[k - 1])];
        if (ranges[index(values[k])].first <= before.last)
          fail("buffer {} holds {} (alive through op #{}) and {} (defined by op #{}) at once", buffer,
               g_.ref(values[k - 1]), before.last, g_.ref(values[k]), ranges[index(values[k])].first);
      }
    }
  }

  const Graph& g_;
  std::vector<std::string> definer_;  // per value: what defines it, for messages ("op #3 add (%x)")
  std::vector<bool> defined_;         // per value: defined before the op being checked
};

}  // namespace

std::string verify_error(const Graph& graph) {
  try {
    Verifier(graph).run();
  } catch (const Problem& problem) {
    return problem.message;
  }
  return {};
}

void verify(const Graph& graph) {
  if (std::string error = verify_error(graph); !error.empty()) throw IrError(error);
}

}  // namespace rwkvc
