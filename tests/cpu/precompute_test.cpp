// precompute_token_free: what every backend compiles is the token-dependent rest of the graph,
// with the token-free values turned into weights holding what the interpreter computed.
#include <catch2/catch.hpp>

#include <cmath>

#include "backends/cpu/precompute.h"
#include "cpu_test_support.h"
#include "ir/verifier.h"

namespace rwkvc::test {

TEST_CASE("token-free ops become weights holding their values", "[cpu][precompute]") {
  OpGraph g(5);
  GraphBuilder& b = g.builder();
  ValueId x = g.random_sequence("table", 4, 3);
  ValueId decay = g.random_weight("decay", Shape{3});
  ValueId w = b.unary(OpKind::neg, b.unary(OpKind::exp, decay), "w");  // -exp(decay): token-free
  b.set_logits(b.mul(x, w));
  Graph graph = b.graph();

  Precomputed p = precompute_token_free(graph, g.weights());
  verify(p.graph);
  // Left: the embedding and the multiply; the exp and the neg ran here.
  REQUIRE(p.graph.ops.size() == 2);
  CHECK(p.graph.ops[0].kind == OpKind::embedding);
  CHECK(p.graph.ops[1].kind == OpKind::mul);
  // "decay" is read by nothing left, so it is no longer declared; "w" is.
  bool declares_decay = false, declares_w = false;
  for (const WeightDecl& decl : p.graph.weights) {
    declares_decay |= decl.key == "decay";
    declares_w |= decl.key == std::string(kPrecomputedPrefix) + "w";
  }
  CHECK_FALSE(declares_decay);
  REQUIRE(declares_w);
  std::vector<double> want;
  for (double d : g.values("decay")) want.push_back(-std::exp(d));
  CHECK(relative_error(p.weights.at(std::string(kPrecomputedPrefix) + "w"), want) <= kTolerance);
}

TEST_CASE("a graph with nothing token-free is returned unchanged", "[cpu][precompute]") {
  OpGraph g(6);
  ValueId x = g.random_sequence("table", 4, 3);
  g.builder().set_logits(g.builder().unary(OpKind::tanh, x));
  Graph graph = g.builder().graph();
  Precomputed p = precompute_token_free(graph, g.weights());
  CHECK(p.graph == graph);
}

}  // namespace rwkvc::test
