#include "backends/cpu/precompute.h"

#include <algorithm>

#include "backends/backend.h"
#include "backends/cpu/fold_cache.h"
#include "backends/cpu/interpreter.h"
#include "ir/text.h"

namespace rwkvc {

namespace {

std::size_t at(ValueId id) { return static_cast<std::size_t>(id); }

// An op the host evaluates at compile time: it reads only known values and its results do not
// grow with the sequence (an embedding reads the tokens, so it never qualifies).
bool is_token_free(const Graph& graph, const Op& op, const std::vector<bool>& known) {
  return std::all_of(op.operands.begin(), op.operands.end(), [&](ValueId id) { return known[at(id)]; }) &&
         std::none_of(op.results.begin(), op.results.end(),
                      [&](ValueId id) { return graph.type(id).shape.has_seq(); });
}

// A folded region is read from the fold cache when it holds the region's results for these
// inputs; otherwise it runs here and its results are stored there.
void run_folded(const Graph& graph, const Op& op, cpu::Frame& frame) {
  std::vector<std::span<const float>> inputs;
  for (ValueId id : op.operands) inputs.push_back(frame.values[at(id)]);
  cpu::FoldKey key = cpu::fold_key(graph, op, inputs);
  std::vector<std::int64_t> sizes;
  for (ValueId id : op.results) sizes.push_back(graph.type(id).shape.numel());
  if (auto cached = cpu::load_folded(key, sizes)) {
    for (std::size_t i = 0; i < op.results.size(); ++i) {
      frame.owned[at(op.results[i])] = std::move((*cached)[i]);
      frame.values[at(op.results[i])] = frame.owned[at(op.results[i])];
    }
    return;
  }
  cpu::run_op(op, frame);
  std::vector<std::span<const float>> results;
  for (ValueId id : op.results) results.push_back(frame.values[at(id)]);
  cpu::store_folded(key, results);
}

}  // namespace

Precomputed precompute_token_free(const Graph& graph, const WeightMap& weights) {
  std::vector<TensorType> types;
  for (const Value& value : graph.values) types.push_back(value.type);
  cpu::Frame frame(types, 1, {});
  std::vector<bool> known(graph.values.size(), false);
  std::vector<const WeightDecl*> decl_of(graph.values.size(), nullptr);
  for (const WeightDecl& decl : graph.weights) {
    known[at(decl.value)] = true;
    decl_of[at(decl.value)] = &decl;
  }
  // Weights are converted to f32 only when a token-free op reads them: a large model's matrices
  // are never copied here.
  auto load = [&](ValueId id) {
    if (decl_of[at(id)] == nullptr || !frame.values[at(id)].empty()) return;
    frame.owned[at(id)] = weight_as_declared(graph, *decl_of[at(id)], weights).to_f32();
    frame.values[at(id)] = frame.owned[at(id)];
  };

  Precomputed out{graph, weights};
  out.graph.ops.clear();
  std::vector<bool> computed(graph.values.size(), false);  // results of ops run here
  for (std::size_t index = 0; index < graph.ops.size(); ++index) {
    const Op& op = graph.ops[index];
    cpu::check_supported(graph, op, index);
    if (!is_token_free(graph, op, known)) {
      out.graph.ops.push_back(op);
      continue;
    }
    for (ValueId id : op.operands) load(id);
    if (op.kind == OpKind::region && op.region->kind == "folded")
      run_folded(graph, op, frame);
    else
      cpu::run_op(op, frame);
    for (ValueId id : op.results) known[at(id)] = computed[at(id)] = true;
  }

  // What the remaining ops and the graph's outputs read becomes a weight; the rest goes.
  std::vector<bool> needed(graph.values.size(), false);
  for (const Op& op : out.graph.ops)
    for (ValueId id : op.operands) needed[at(id)] = true;
  if (graph.logits != kNoValue) needed[at(graph.logits)] = true;
  for (const StateDecl& s : graph.states)
    if (s.output != kNoValue) needed[at(s.output)] = true;

  out.graph.weights.clear();
  for (const WeightDecl& decl : graph.weights)
    if (needed[at(decl.value)]) out.graph.weights.push_back(decl);
  for (std::size_t id = 0; id < graph.values.size(); ++id) {
    if (!computed[id] || !needed[id]) continue;
    std::string key = std::string(kPrecomputedPrefix) + graph.values[id].name;
    out.graph.weights.push_back({static_cast<ValueId>(id), key});
    out.weights.insert_or_assign(key, HostTensor::from_f32(types[id].shape, std::move(frame.owned[id])));
  }
  // Renumbered as the text numbers it, without the values nothing defines any more.
  out.graph = parse_graph(print_graph(out.graph));
  return out;
}

}  // namespace rwkvc
