#include "backends/cuda/prefill_half.h"

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string>

namespace rwkvc::cuda {

namespace {

std::size_t at(ValueId id) { return static_cast<std::size_t>(id); }

bool is_reduction(OpKind kind) {
  return kind == OpKind::l2_norm || kind == OpKind::group_norm || kind == OpKind::reduce_sum ||
         kind == OpKind::layer_norm;
}

// The 16-bit weight type of a matmul that long calls send to cuBLAS: a [T, K] left operand
// and a weight matrix (`is_weight` of the right operand) of f16/bf16. Null otherwise.
template <typename IsWeight>
std::optional<DType> long_gemm_type(const Op& op, std::span<const TensorType> types, IsWeight is_weight) {
  if (op.kind != OpKind::matmul || op.operands[0] == op.operands[1] || !is_weight(op.operands[1])) return std::nullopt;
  const Shape& a = types[at(op.operands[0])].shape;
  if (a.rank() != 2 || a[0] != kSeq || a[1] == kSeq) return std::nullopt;
  DType type = types[at(op.operands[1])].dtype;
  if (type != DType::f16 && type != DType::bf16) return std::nullopt;
  return type;
}

}  // namespace

bool half_activations_enabled() {
  const char* value = std::getenv("RWKVC_CUDA_HALF_ACTIVATIONS");
  return value == nullptr || std::string(value) != "0";
}

std::vector<DType> long_call_dtypes(const Graph& graph) {
  std::size_t count = graph.values.size();
  std::vector<DType> out(count, DType::f32);
  if (!half_activations_enabled()) return out;
  std::vector<TensorType> types;
  for (const Value& value : graph.values) types.push_back(value.type);
  std::vector<bool> is_weight(count, false);
  for (const WeightDecl& decl : graph.weights) is_weight[at(decl.value)] = true;
  auto top_weight = [&](ValueId id) { return is_weight[at(id)]; };

  // What the readers of each value take: nothing known yet, one 16-bit type, or f32.
  std::vector<std::optional<DType>> wanted(count);
  auto want = [&](ValueId id, DType type) {
    auto& w = wanted[at(id)];
    w = !w || *w == type ? type : DType::f32;
  };
  for (const Op& op : graph.ops) {
    for (std::size_t k = 0; k < op.operands.size(); ++k) {
      ValueId value = op.operands[k];
      if (!op.region) {
        // The logits' matmul may run on the last row alone (a GEMV reading f32).
        std::optional<DType> type =
            k == 0 && op.results[0] != graph.logits ? long_gemm_type(op, types, top_weight) : std::nullopt;
        want(value, type.value_or(DType::f32));
        continue;
      }
      const Region& body = *op.region;
      auto argument = static_cast<ValueId>(k);
      auto body_weight = [&](ValueId id) { return at(id) < body.arguments && is_weight[at(op.operands[at(id)])]; };
      if (std::find(body.yields.begin(), body.yields.end(), argument) != body.yields.end()) want(value, DType::f32);
      for (const Op& inner : body.ops)
        for (std::size_t j = 0; j < inner.operands.size(); ++j) {
          if (inner.operands[j] != argument) continue;
          std::optional<DType> type = j == 0 ? long_gemm_type(inner, body.values, body_weight) : std::nullopt;
          want(value, type.value_or(DType::f32));
        }
    }
  }
  if (graph.logits != kNoValue) want(graph.logits, DType::f32);
  for (const StateDecl& decl : graph.states) {
    want(decl.input, DType::f32);
    if (decl.output != kNoValue) want(decl.output, DType::f32);
  }

  // Whether the step that produces result `p` of `op` in a long call can store `type`.
  auto stores = [&](const Op& op, std::size_t p, DType type) {
    if (op.kind == OpKind::matmul) return long_gemm_type(op, types, top_weight) == type;
    if (!op.region) return is_generatable(op.kind) && !is_reduction(op.kind);
    // A region's yield: computed last by a generated kernel, or by a matmul, into the result's
    // slot; read by nothing else in the body (which reads its values in f32).
    const Region& body = *op.region;
    ValueId yielded = body.yields[p];
    if (at(yielded) < body.arguments || std::count(body.yields.begin(), body.yields.end(), yielded) != 1) return false;
    const Op* producer = nullptr;
    for (const Op& inner : body.ops) {
      if (std::find(inner.operands.begin(), inner.operands.end(), yielded) != inner.operands.end()) return false;
      if (std::find(inner.results.begin(), inner.results.end(), yielded) != inner.results.end()) producer = &inner;
    }
    if (producer == nullptr) return false;
    auto body_weight = [&](ValueId id) { return at(id) < body.arguments && is_weight[at(op.operands[at(id)])]; };
    if (producer->kind == OpKind::matmul) return long_gemm_type(*producer, body.values, body_weight) == type;
    return is_generatable(producer->kind) && !is_reduction(producer->kind);
  };
  for (const Op& op : graph.ops)
    for (std::size_t p = 0; p < op.results.size(); ++p) {
      ValueId id = op.results[p];
      const std::optional<DType>& type = wanted[at(id)];
      if (type && *type != DType::f32 && stores(op, p, *type)) out[at(id)] = *type;
    }
  return out;
}

Step by_call_length(std::vector<Step> short_steps, std::vector<Step> long_steps) {
  return [short_steps = std::move(short_steps), long_steps = std::move(long_steps)](RunContext& ctx) {
    for (const Step& step : ctx.T > kGemvMaxRows ? long_steps : short_steps) step(ctx);
  };
}

}  // namespace rwkvc::cuda
