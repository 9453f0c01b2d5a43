// lower-precision on the CPU backend: the lowered graph computes exactly what the unlowered one
// computes on a checkpoint whose matrices were stored in f16/bf16, and stays within the
// precision's tolerance of f32.
#include <catch2/catch.hpp>

#include "backends/cpu/cpu_backend.h"
#include "backends/feed_mode.h"
#include "passes/pass_manager.h"
#include "passes/passes.h"
#include "tests/e2e/e2e_support.h"

namespace rwkvc::test {

namespace {

// The weights as a checkpoint stored in `dtype` would hold them, for the weights the lowered
// graph declares in `dtype`.
WeightMap rounded_like(const Graph& lowered, const WeightMap& weights, DType dtype) {
  WeightMap out = weights;
  for (const WeightDecl& decl : lowered.weights)
    if (lowered.type(decl.value).dtype == dtype) out[decl.key] = weights.at(decl.key).converted(dtype);
  return out;
}

// Relative error allowed against f32: each weight carries a rounding of at most the unit
// roundoff u (f16 2^-11 = 4.9e-4, bf16 2^-8 = 3.9e-3); errors of independent weights partly
// cancel in dot products but compound through the layers, so allow 10 u.
double tolerance(DType dtype) { return dtype == DType::f16 ? 10 * 4.9e-4 : 10 * 3.9e-3; }

void check_lowering(const std::string& fixture, DType dtype) {
  Model model = load_model(fixture_path(fixture));
  Graph graph = build_graph(model.config);
  Graph lowered = passes::run_pipeline(graph, passes::parse_pipeline(
                                                  "fold-constants,fuse-wkv,fuse-elementwise," + passes::precision_step(dtype)));
  std::size_t lowered_weights = 0;
  for (const WeightDecl& decl : lowered.weights) lowered_weights += lowered.type(decl.value).dtype == dtype;
  // Every projection matrix, the embedding and the head.
  CHECK(lowered_weights >= static_cast<std::size_t>(4 * model.config.layers + 2));

  auto tokens = random_tokens(9, model.config.vocab, 5);
  auto run = [&](const Graph& g, const WeightMap& w, FeedMode mode) {
    auto exe = make_cpu_backend()->compile(g, w);
    State state = exe->new_state();
    return feed(*exe, tokens, state, mode, true);
  };
  HostTensor f32_logits = run(graph, model.weights, FeedMode::gpt());
  HostTensor stored_low = run(graph, rounded_like(lowered, model.weights, dtype), FeedMode::gpt());
  for (FeedMode mode : {FeedMode::gpt(), FeedMode::rnn(), FeedMode::chunked(3)}) {
    INFO(fixture << ", " << dtype_name(dtype) << ", mode " << mode.name());
    HostTensor logits = run(lowered, model.weights, mode);
    Error same = compare(logits.f32(), stored_low.f32());
    INFO("against weights stored in " << dtype_name(dtype) << ": max-abs " << same.max_abs);
    CHECK(same.relative <= 1e-5);  // fusion may reorder; the rounding itself is identical
    Error drift = compare(logits.f32(), f32_logits.f32());
    INFO("against f32: max-abs " << drift.max_abs << ", relative " << drift.relative);
    CHECK(drift.relative > 0);  // the weights really were rounded
    CHECK(drift.relative <= tolerance(dtype));
  }
}

}  // namespace

TEST_CASE("lower-precision rounds RWKV-7's matrices and nothing else", "[passes][precision]") {
  check_lowering("rwkv7-tiny.safetensors", DType::f16);
  check_lowering("rwkv7-tiny.safetensors", DType::bf16);
}

TEST_CASE("lower-precision rounds RWKV-4's matrices and nothing else", "[passes][precision]") {
  check_lowering("rwkv4-tiny.safetensors", DType::f16);
  check_lowering("rwkv4-tiny.safetensors", DType::bf16);
}

}  // namespace rwkvc::test
