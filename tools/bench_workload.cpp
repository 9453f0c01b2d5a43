#include "tools/bench_workload.h"

#include <map>
#include <set>

#include <fmt/format.h>

#include "passes/graph_stats.h"

namespace rwkvc::cli {

namespace {

std::int64_t bytes_of(const TensorType& type) {
  return type.shape.numel() * static_cast<std::int64_t>(dtype_size(type.dtype));
}

// Params of the matmuls inside `op` (the op itself, or a region's body): their B operands.
std::int64_t matmul_params(const Graph& graph, const Op& op) {
  if (op.kind == OpKind::matmul) return graph.type(op.operands[1]).shape.numel();
  if (op.kind != OpKind::region) return 0;
  std::int64_t params = 0;
  for (const Op& inner : op.region->ops)
    if (inner.kind == OpKind::matmul)
      params += op.region->values.at(static_cast<std::size_t>(inner.operands[1])).shape.numel();
  return params;
}

std::string dtype_shares(const Graph& graph) {
  std::map<DType, std::int64_t> bytes;
  std::int64_t total = 0;
  for (const WeightDecl& decl : graph.weights) {
    bytes[graph.type(decl.value).dtype] += bytes_of(graph.type(decl.value));
    total += bytes_of(graph.type(decl.value));
  }
  if (bytes.size() == 1) return std::string(dtype_name(bytes.begin()->first));
  std::string text;
  for (const auto& [dtype, count] : bytes)
    text += fmt::format("{}{} {:.1f}%", text.empty() ? "" : ", ", dtype_name(dtype),
                        100.0 * static_cast<double>(count) / static_cast<double>(std::max<std::int64_t>(total, 1)));
  return text + " of weight bytes";
}

}  // namespace

Workload analyse_workload(const Graph& graph) {
  Workload work;
  // A value depends on the call when it derives from the tokens or the state; the rest was
  // known before any token (a backend precomputes it once).
  std::vector<bool> per_call(graph.values.size(), false);
  per_call[static_cast<std::size_t>(graph.tokens)] = true;
  for (const StateDecl& s : graph.states) per_call[static_cast<std::size_t>(s.input)] = true;

  std::set<ValueId> read;  // token-free values a per-call op reads, each counted once
  for (const Op& op : graph.ops) {
    if (op.kind == OpKind::constant) read.insert(op.results[0]);  // a scalar kernels take as an argument
    bool depends = false;
    for (ValueId v : op.operands) depends = depends || per_call[static_cast<std::size_t>(v)];
    if (!depends) continue;
    for (ValueId r : op.results) per_call[static_cast<std::size_t>(r)] = true;
    for (std::size_t i = 0; i < op.operands.size(); ++i) {
      ValueId v = op.operands[i];
      if (per_call[static_cast<std::size_t>(v)] || !read.insert(v).second) continue;
      const TensorType& type = graph.type(v);
      const bool table = op.kind == OpKind::embedding && i == 0;
      work.decode_bytes_per_token += table ? bytes_of(type) / std::max<std::int64_t>(type.shape[0], 1) : bytes_of(type);
    }
    bool makes_logits = false;
    for (ValueId r : op.results) makes_logits = makes_logits || r == graph.logits;
    (makes_logits ? work.head_params : work.matmul_params_per_row) += matmul_params(graph, op);
  }
  work.kernels = static_cast<std::int64_t>(passes::graph_stats(graph).kernels);
  work.weight_dtypes = dtype_shares(graph);
  return work;
}

}  // namespace rwkvc::cli
