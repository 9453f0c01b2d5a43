// What -O2 leaves of an RWKV-7 layer: one token-shift/mix kernel per mixing block (the layer norm
// inside it), the projections, one fused WKV kernel and the channel-mix matmuls; nothing else.
#include <catch2/catch.hpp>

#include <map>

#include "passes/graph_rewrite.h"
#include "passes/pass_manager.h"
#include "tests/e2e/e2e_support.h"

namespace rwkvc::test {

namespace {

// "blocks.3.att" for a value named "blocks.3.att.r"; empty for values outside the blocks.
std::string block_part(const std::string& name) {
  if (!name.starts_with("blocks.")) return {};
  std::size_t layer_end = name.find('.', 7);
  std::size_t part_end = name.find('.', layer_end + 1);
  return name.substr(0, part_end);
}

// Kernels launched per call, by block part and kind ("matmul", "layer_norm", region "wkv", ...).
std::map<std::string, std::map<std::string, int>> kernels_by_part(const Graph& graph) {
  std::vector<bool> weight_only = passes::weight_only_values(graph);
  std::map<std::string, std::map<std::string, int>> out;
  for (const Op& op : graph.ops) {
    if (op.kind == OpKind::constant || op.kind == OpKind::reshape) continue;
    if (weight_only[static_cast<std::size_t>(op.results[0])]) continue;  // folded at compile time
    std::string kind = op.kind == OpKind::region ? "region " + op.region->kind : std::string(op_name(op.kind));
    ++out[block_part(graph.value(op.results[0]).name)][kind];
  }
  return out;
}

int total(const std::map<std::string, int>& kinds) {
  int sum = 0;
  for (const auto& [kind, count] : kinds) sum += count;
  return sum;
}

}  // namespace

TEST_CASE("At -O2 each RWKV-7 layer keeps its mix, projection, WKV and channel-mix kernels only",
          "[passes][fusion]") {
  Model model = load_model(fixture_path("rwkv7-tiny.safetensors"));
  Graph graph = passes::run_pipeline(build_graph(model.config), passes::parse_pipeline(passes::preset_pipeline(2)));
  auto parts = kernels_by_part(graph);
  for (int layer = 0; layer < model.config.layers; ++layer) {
    std::string att = "blocks." + std::to_string(layer) + ".att", ffn = "blocks." + std::to_string(layer) + ".ffn";
    INFO("layer " << layer);
    // Time mix: the mix kernel and one fused WKV; everything else is a matmul (with its epilogue).
    CHECK(parts[att]["region token_shift_mix"] == 1);
    CHECK(parts[att]["region wkv"] == 1);
    CHECK(parts[att]["region matmul_epilogue"] + parts[att]["matmul"] + 2 == total(parts[att]));
    // Channel mix: the mix kernel and the key with its relu-square.
    CHECK(parts[ffn]["region token_shift_mix"] == 1);
    CHECK(parts[ffn]["region matmul_epilogue"] == 1);
    CHECK(total(parts[ffn]) == 2);
    // The residual stream (x.att, x.ffn): the output and value projections with the residual add
    // as their epilogues. No layer norm or elementwise kernel is left in the layer.
    std::string layer_name = "blocks." + std::to_string(layer) + ".x";
    CHECK(parts[layer_name]["region matmul_epilogue"] == 2);
    CHECK(total(parts[layer_name]) == 2);
    for (const auto& [part, kinds] : parts)
      if (part.starts_with("blocks." + std::to_string(layer) + "."))
        CHECK((part == att || part == ffn || part == layer_name));
  }
  CHECK(parts[""]["layer_norm"] <= 2);  // ln0 on the embedding and ln_out before the head
}

}  // namespace rwkvc::test
