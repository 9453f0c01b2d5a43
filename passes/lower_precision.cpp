// lower-precision: the matrices of matmuls and the embedding tables are declared f16 or bf16,
// halving the bytes decode reads per token; activations, sums and the state stay f32.
#include <algorithm>
#include <memory>
#include <stdexcept>

#include <fmt/format.h>

#include "passes/graph_rewrite.h"
#include "passes/passes.h"

namespace rwkvc::passes {

DType precision_argument(std::string_view argument) {
  if (argument.empty() || argument == "f16") return DType::f16;
  if (argument == "bf16") return DType::bf16;
  throw std::invalid_argument(
      fmt::format("lower-precision takes f16 or bf16, not '{}' (f32 is the absence of the pass)", argument));
}

namespace {

// Whether `op` reads `value` only as a matmul's matrix or an embedding's table; for a region,
// whether its body reads each argument bound to `value` only so.
bool reads_only_as_table(const Op& op, ValueId value) {
  auto table_use = [](const Op& reader, ValueId v) {
    for (std::size_t k = 0; k < reader.operands.size(); ++k) {
      if (reader.operands[k] != v) continue;
      bool as_table = (reader.kind == OpKind::matmul && k == 1) || (reader.kind == OpKind::embedding && k == 0);
      if (!as_table) return false;
    }
    return true;
  };
  if (!op.region) return table_use(op, value);
  for (std::size_t k = 0; k < op.operands.size(); ++k) {
    if (op.operands[k] != value) continue;
    for (const Op& inner : op.region->ops)
      if (!table_use(inner, static_cast<ValueId>(k))) return false;
    for (ValueId yielded : op.region->yields)
      if (yielded == static_cast<ValueId>(k)) return false;
  }
  return true;
}

// The region's arguments bound to `value` retyped to `to`, so that they keep matching the operand.
void retype_arguments(Op& op, ValueId value, DType to) {
  auto region = std::make_shared<Region>(*op.region);
  for (std::size_t k = 0; k < op.operands.size(); ++k)
    if (op.operands[k] == value) region->values[k].dtype = to;
  op.region = std::move(region);
}

}  // namespace

Graph lower_precision(const Graph& graph, DType to) {
  // A weight is lowered when every reader reads it as a matmul's matrix or an embedding's table
  // (inside a region too): those kernels convert as they load. A weight any other op reads (a
  // norm's scale, a mix) stays f32.
  Uses uses = analyse_uses(graph);
  Graph out = graph;
  for (const WeightDecl& decl : graph.weights) {
    auto id = static_cast<std::size_t>(decl.value);
    if (uses.readers[id].empty() || uses.graph_output[id]) continue;
    bool only_tables = std::all_of(uses.readers[id].begin(), uses.readers[id].end(),
                                   [&](std::size_t reader) { return reads_only_as_table(graph.ops[reader], decl.value); });
    if (!only_tables) continue;
    out.values[id].type.dtype = to;
    for (std::size_t reader : uses.readers[id])
      if (out.ops[reader].region) retype_arguments(out.ops[reader], decl.value, to);
  }
  return out;
}

}  // namespace rwkvc::passes
