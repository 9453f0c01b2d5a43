// Builds a graph op by op, inferring each result's type; the frontend's graph builders read
// like the model's equations through the helpers below.
#pragma once

#include <set>
#include <string>
#include <string_view>

#include "ir/graph.h"

namespace rwkvc {

class GraphBuilder {
 public:
  explicit GraphBuilder(std::string graph_name);

  // Names of new values start with this prefix (e.g. "blocks.3.att.").
  void set_scope(std::string prefix) { scope_ = std::move(prefix); }

  ValueId tokens();
  ValueId weight(const std::string& key, TensorType type);
  ValueId state(const std::string& slot, TensorType type, double init = 0.0);
  void state_out(const std::string& slot, ValueId value);
  void set_logits(ValueId value);

  // Appends an op; throws IrError naming the op if the operands do not type-check.
  std::vector<ValueId> op(OpKind kind, std::vector<ValueId> operands, Attrs attrs = {},
                          std::vector<std::string> names = {});
  ValueId op1(OpKind kind, std::vector<ValueId> operands, Attrs attrs = {}, std::string name = {});

  // Equation helpers: each appends one op.
  ValueId add(ValueId a, ValueId b, std::string name = {}) { return op1(OpKind::add, {a, b}, {}, std::move(name)); }
  ValueId sub(ValueId a, ValueId b, std::string name = {}) { return op1(OpKind::sub, {a, b}, {}, std::move(name)); }
  ValueId mul(ValueId a, ValueId b, std::string name = {}) { return op1(OpKind::mul, {a, b}, {}, std::move(name)); }
  ValueId lerp(ValueId a, ValueId b, ValueId t, std::string name = {}) {
    return op1(OpKind::lerp, {a, b, t}, {}, std::move(name));
  }
  ValueId unary(OpKind kind, ValueId x, std::string name = {}) { return op1(kind, {x}, {}, std::move(name)); }
  // x W^T for W stored [out, in] (nn.Linear); x B for B stored [in, out] (LoRA factors).
  ValueId linear(ValueId x, ValueId w, std::string name = {});
  ValueId matmul(ValueId x, ValueId b, std::string name = {});
  ValueId layer_norm(ValueId x, ValueId w, ValueId b, double eps, std::string name = {});
  ValueId group_norm(ValueId x, ValueId w, ValueId b, std::int64_t groups, double eps, std::string name = {});
  ValueId l2_norm(ValueId x, std::int64_t groups, double eps, std::string name = {});
  ValueId reshape(ValueId x, std::vector<std::int64_t> shape, std::string name = {});
  ValueId constant(double value, std::string name = {});

  const Graph& graph() const { return graph_; }
  // Verifies and returns the graph; the builder is left empty.
  Graph finish();

 private:
  ValueId new_value(std::string name, TensorType type);

  Graph graph_;
  std::string scope_;
  std::set<std::string, std::less<>> names_;
};

}  // namespace rwkvc
