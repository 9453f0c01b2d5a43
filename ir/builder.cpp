#include "ir/builder.h"

#include <fmt/format.h>

#include "ir/error.h"
#include "ir/verifier.h"

namespace rwkvc {

GraphBuilder::GraphBuilder(std::string graph_name) { graph_.name = std::move(graph_name); }

ValueId GraphBuilder::new_value(std::string name, TensorType type) {
  std::string unique = name;
  for (int suffix = 1; names_.contains(unique); ++suffix) unique = fmt::format("{}.{}", name, suffix);
  names_.insert(unique);
  graph_.values.push_back(Value{unique, std::move(type)});
  return static_cast<ValueId>(graph_.values.size() - 1);
}

ValueId GraphBuilder::tokens() {
  if (graph_.tokens != kNoValue) throw IrError("graph already has a tokens input");
  graph_.tokens = new_value("tokens", TensorType{DType::i32, Shape{kSeq}});
  return graph_.tokens;
}

ValueId GraphBuilder::weight(const std::string& key, TensorType type) {
  ValueId id = new_value(key, std::move(type));
  graph_.weights.push_back(WeightDecl{id, key});
  return id;
}

ValueId GraphBuilder::state(const std::string& slot, TensorType type, double init) {
  ValueId id = new_value(slot, std::move(type));
  graph_.states.push_back(StateDecl{slot, id, kNoValue, init});
  return id;
}

void GraphBuilder::state_out(const std::string& slot, ValueId value) {
  for (StateDecl& decl : graph_.states)
    if (decl.slot == slot) {
      decl.output = value;
      return;
    }
  throw IrError(fmt::format("state_out: no state slot '{}'", slot));
}

void GraphBuilder::set_logits(ValueId value) { graph_.logits = value; }

std::vector<ValueId> GraphBuilder::op(OpKind kind, std::vector<ValueId> operands, Attrs attrs,
                                      std::vector<std::string> names) {
  std::vector<TensorType> operand_types;
  for (std::size_t i = 0; i < operands.size(); ++i) {
    if (operands[i] < 0 || static_cast<std::size_t>(operands[i]) >= graph_.values.size())
      throw IrError(fmt::format("op #{} {}: operand {} is value #{}, which does not exist", graph_.ops.size(),
                                op_name(kind), i, operands[i]));
    operand_types.push_back(graph_.type(operands[i]));
  }
  InferredTypes inferred = infer_result_types(kind, operand_types, attrs);
  if (!inferred.error.empty()) {
    std::string operand_list;
    for (ValueId id : operands) operand_list += (operand_list.empty() ? "" : ", ") + graph_.ref(id);
    throw IrError(fmt::format("op #{} {}({}): {}", graph_.ops.size(), op_name(kind), operand_list, inferred.error));
  }
  Op op{kind, std::move(operands), {}, std::move(attrs)};
  for (std::size_t i = 0; i < inferred.types.size(); ++i) {
    std::string base = i < names.size() && !names[i].empty() ? names[i] : std::string(op_name(kind));
    op.results.push_back(new_value(scope_ + base, inferred.types[i]));
  }
  graph_.ops.push_back(std::move(op));
  return graph_.ops.back().results;
}

ValueId GraphBuilder::op1(OpKind kind, std::vector<ValueId> operands, Attrs attrs, std::string name) {
  return op(kind, std::move(operands), std::move(attrs), {std::move(name)})[0];
}

ValueId GraphBuilder::linear(ValueId x, ValueId w, std::string name) {
  return op1(OpKind::matmul, {x, w}, {{"transpose_b", std::int64_t{1}}}, std::move(name));
}

ValueId GraphBuilder::matmul(ValueId x, ValueId b, std::string name) {
  return op1(OpKind::matmul, {x, b}, {{"transpose_b", std::int64_t{0}}}, std::move(name));
}

ValueId GraphBuilder::layer_norm(ValueId x, ValueId w, ValueId b, double eps, std::string name) {
  return op1(OpKind::layer_norm, {x, w, b}, {{"eps", eps}}, std::move(name));
}

ValueId GraphBuilder::group_norm(ValueId x, ValueId w, ValueId b, std::int64_t groups, double eps, std::string name) {
  return op1(OpKind::group_norm, {x, w, b}, {{"groups", groups}, {"eps", eps}}, std::move(name));
}

ValueId GraphBuilder::l2_norm(ValueId x, std::int64_t groups, double eps, std::string name) {
  return op1(OpKind::l2_norm, {x}, {{"groups", groups}, {"eps", eps}}, std::move(name));
}

ValueId GraphBuilder::reshape(ValueId x, std::vector<std::int64_t> shape, std::string name) {
  return op1(OpKind::reshape, {x}, {{"shape", std::move(shape)}}, std::move(name));
}

ValueId GraphBuilder::constant(double value, std::string name) {
  return op1(OpKind::constant, {}, {{"value", value}}, std::move(name));
}

Graph GraphBuilder::finish() {
  verify(graph_);
  Graph done = std::move(graph_);
  graph_ = Graph{};
  names_.clear();
  return done;
}

}  // namespace rwkvc
