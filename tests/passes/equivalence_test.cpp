// Passes keep the function: for the tiny RWKV-7 and RWKV-4 models, every pass alone and every
// preset gives logits within 1e-5 relative of -O0 on the CPU backend, in GPT, RNN and chunk:3 modes.
#include <catch2/catch.hpp>

#include <cmath>
#include <memory>

#include "backends/cpu/cpu_backend.h"
#include "backends/feed_mode.h"
#include "passes/pass_manager.h"
#include "tests/e2e/e2e_support.h"

namespace rwkvc::test {

namespace {

constexpr double kTolerance = 1e-5;

// The largest relative error of `optimised` against -O0 over GPT, RNN and chunk:3 modes,
// all positions' logits.
double worst_drift(const Model& model, const Graph& optimised) {
  auto tokens = random_tokens(11, model.config.vocab, 77);
  auto reference_exe = make_cpu_backend()->compile(build_graph(model.config), model.weights);
  State reference_state = reference_exe->new_state();
  HostTensor reference = feed(*reference_exe, tokens, reference_state, FeedMode::gpt(), true);
  auto exe = make_cpu_backend()->compile(optimised, model.weights);
  double worst = 0;
  for (FeedMode mode : {FeedMode::gpt(), FeedMode::rnn(), FeedMode::chunked(3)}) {
    State state = exe->new_state();
    HostTensor logits = feed(*exe, tokens, state, mode, true);
    REQUIRE(logits.shape() == reference.shape());
    Error e = compare(logits.f32(), reference.f32());
    INFO("mode " << mode.name() << ": max-abs " << e.max_abs << ", relative " << e.relative);
    CHECK(std::isfinite(e.relative));
    worst = std::max(worst, e.relative);
  }
  return worst;
}

void check_pipelines_keep_logits(const std::string& fixture) {
  Model model = load_model(fixture_path(fixture));
  Graph graph = build_graph(model.config);
  std::vector<std::string> pipelines;
  // lower-precision changes the function on purpose: lower_precision_test.cpp checks it.
  for (const passes::Pass& pass : passes::all_passes())
    if (pass.name != "lower-precision") pipelines.emplace_back(pass.name);
  for (int level : {1, 2}) pipelines.push_back(passes::preset_pipeline(level));
  for (const std::string& pipeline : pipelines) {
    INFO(fixture << ", pipeline '" << pipeline << "'");
    CHECK(worst_drift(model, passes::run_pipeline(graph, passes::parse_pipeline(pipeline))) <= kTolerance);
  }
}

// A miscompiling pass: the first sigmoid, at top level or inside a region, becomes a tanh.
Graph sabotage(Graph graph) {
  for (Op& op : graph.ops) {
    if (op.kind == OpKind::sigmoid) {
      op.kind = OpKind::tanh;
      return graph;
    }
    if (!op.region) continue;
    for (const Op& inner : op.region->ops)
      if (inner.kind == OpKind::sigmoid) {
        auto body = std::make_shared<Region>(*op.region);
        for (Op& b : body->ops)
          if (b.kind == OpKind::sigmoid) {
            b.kind = OpKind::tanh;
            break;
          }
        op.region = std::move(body);
        return graph;
      }
  }
  FAIL("the graph has no sigmoid to break");
  return graph;
}

}  // namespace

TEST_CASE("RWKV-7 tiny: every pass and preset keeps the -O0 logits in every mode", "[passes][equivalence]") {
  check_pipelines_keep_logits("rwkv7-tiny.safetensors");
}

TEST_CASE("RWKV-4 tiny: every pass and preset keeps the -O0 logits in every mode", "[passes][equivalence]") {
  check_pipelines_keep_logits("rwkv4-tiny.safetensors");
}

TEST_CASE("the equivalence check catches a pass that miscompiles one op", "[passes][equivalence]") {
  for (const char* fixture : {"rwkv7-tiny.safetensors", "rwkv4-tiny.safetensors"}) {
    INFO(fixture);
    Model model = load_model(fixture_path(fixture));
    Graph optimised = passes::run_pipeline(build_graph(model.config), passes::parse_pipeline(passes::preset_pipeline(2)));
    CHECK(worst_drift(model, optimised) <= kTolerance);
    CHECK(worst_drift(model, sabotage(optimised)) > 100 * kTolerance);
  }
}

TEST_CASE("preset O2 fuses each RWKV-7 layer into one mix kernel per token shift and one WKV kernel", "[passes][fusion]") {
  Model model = load_model(fixture_path("rwkv7-tiny.safetensors"));
  Graph optimised = passes::run_pipeline(build_graph(model.config), passes::parse_pipeline(passes::preset_pipeline(2)));
  std::map<std::string, int> regions;
  for (const Op& op : optimised.ops) {
    CHECK(op.kind != OpKind::token_shift);
    CHECK(op.kind != OpKind::wkv7);
    if (op.region) ++regions[op.region->kind];
  }
  std::int64_t layers = model.config.layers;
  CHECK(regions["token_shift_mix"] == 2 * layers);
  CHECK(regions["wkv"] == layers);
}

}  // namespace rwkvc::test
