// lower-precision: the matrices of matmuls and the embedding tables are declared f16 or bf16,
// halving the bytes decode reads per token; activations, sums and the state stay f32.
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

Graph lower_precision(const Graph& graph, DType to) {
  // A weight is lowered when every reader reads it as a matmul's matrix or an embedding's table:
  // those kernels convert as they load. A weight any other op reads (a norm's scale, a mix) stays.
  Uses uses = analyse_uses(graph);
  Graph out = graph;
  for (const WeightDecl& decl : graph.weights) {
    auto id = static_cast<std::size_t>(decl.value);
    if (uses.readers[id].empty() || uses.graph_output[id]) continue;
    bool only_tables = true;
    for (std::size_t reader : uses.readers[id]) {
      const Op& op = graph.ops[reader];
      bool as_table = (op.kind == OpKind::matmul && op.operands[1] == decl.value && op.operands[0] != decl.value) ||
                      (op.kind == OpKind::embedding && op.operands[0] == decl.value);
      only_tables = only_tables && as_table;
    }
    if (only_tables) out.values[id].type.dtype = to;
  }
  return out;
}

}  // namespace rwkvc::passes
