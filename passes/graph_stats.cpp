#include "passes/graph_stats.h"

#include <fmt/format.h>

#include "passes/graph_rewrite.h"

namespace rwkvc::passes {

namespace {

// "blocks.3" for a value named "blocks.3.att.r", "other" otherwise.
std::string layer_of(const std::string& name) {
  if (!name.starts_with("blocks.")) return "other";
  std::size_t end = name.find('.', 7);
  return end == std::string::npos ? name : name.substr(0, end);
}

}  // namespace

GraphStats graph_stats(const Graph& graph) {
  GraphStats stats;
  stats.ops = graph.ops.size();
  std::vector<bool> known = weight_only_values(graph);
  Uses uses = analyse_uses(graph);
  auto bytes = [&](ValueId v) {
    const TensorType& t = graph.type(v);
    return t.shape.has_seq() ? t.shape.numel(1) * static_cast<std::int64_t>(dtype_size(t.dtype)) : 0;
  };
  // Last op reading each value (graph outputs live to the end).
  std::vector<std::size_t> last_read(graph.values.size(), 0);
  for (std::size_t v = 0; v < graph.values.size(); ++v) {
    for (std::size_t q : uses.readers[v]) last_read[v] = std::max(last_read[v], q);
    if (uses.graph_output[v]) last_read[v] = graph.ops.size();
  }
  std::vector<std::int64_t> freed_after(graph.ops.size() + 1, 0);
  std::int64_t live = 0;
  for (std::size_t i = 0; i < graph.ops.size(); ++i) {
    const Op& op = graph.ops[i];
    if (op.region) ++stats.regions[op.region->kind];
    bool weight_only = !op.results.empty() && known[static_cast<std::size_t>(op.results[0])];
    if (weight_only || op.kind == OpKind::constant) continue;
    if (op.kind != OpKind::reshape) {
      ++stats.kernels;
      ++stats.kernels_per_layer[layer_of(graph.value(op.results[0]).name)];
    }
    for (ValueId r : op.results) {
      std::int64_t b = op.kind == OpKind::reshape ? 0 : bytes(r);  // a reshape is a view
      stats.activation_bytes_per_token += b;
      live += b;
      std::size_t dies = std::max(last_read[static_cast<std::size_t>(r)], i);
      freed_after[dies] += b;
    }
    stats.peak_activation_bytes_per_token = std::max(stats.peak_activation_bytes_per_token, live);
    live -= freed_after[i];
  }

  // A planned buffer is as large as the largest value placed in it.
  std::map<std::int32_t, std::pair<std::int64_t, std::int64_t>> buffers;  // per token, fixed
  for (const Value& value : graph.values) {
    if (value.buffer == kNoBuffer) continue;
    auto& [per_token, fixed] = buffers[value.buffer];
    auto element = static_cast<std::int64_t>(dtype_size(value.type.dtype));
    if (value.type.shape.has_seq())
      per_token = std::max(per_token, value.type.shape.numel(1) * element);
    else
      fixed = std::max(fixed, value.type.shape.numel() * element);
  }
  stats.planned_buffers = buffers.size();
  for (const auto& [buffer, sizes] : buffers) {
    stats.planned_bytes_per_token += sizes.first;
    stats.planned_fixed_bytes += sizes.second;
  }
  return stats;
}

std::string format_stats(const GraphStats& s) {
  std::string text = fmt::format("ops: {}\nkernels per forward call: {}\n", s.ops, s.kernels);
  for (const auto& [layer, count] : s.kernels_per_layer) text += fmt::format("  {}: {} kernels\n", layer, count);
  for (const auto& [kind, count] : s.regions) text += fmt::format("regions \"{}\": {}\n", kind, count);
  text += fmt::format("activation bytes per token: {}\npeak live activation bytes per token: {}\n",
                      s.activation_bytes_per_token, s.peak_activation_bytes_per_token);
  if (s.planned_buffers > 0)
    text += fmt::format("planned activation memory: {} buffers, {} bytes per token + {} bytes\n", s.planned_buffers,
                        s.planned_bytes_per_token, s.planned_fixed_bytes);
  return text;
}

}  // namespace rwkvc::passes
