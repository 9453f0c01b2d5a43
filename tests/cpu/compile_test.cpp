// Compiling on the CPU backend: weight binding and its errors, the interface it requires, the
// vocabulary, and values computed at compile time.
#include <catch2/catch.hpp>

#include <cstring>

#include "cpu_test_support.h"
#include "ir/error.h"

namespace rwkvc::test {

namespace {

// A tensor of `dtype` (f16 or bf16) holding `values`, which must be exact in that type.
HostTensor half_tensor(DType dtype, const Shape& shape, const std::vector<float>& values) {
  HostTensor t(dtype, shape);
  for (std::size_t i = 0; i < values.size(); ++i) {
    std::uint16_t bits = dtype == DType::f16 ? float_to_half(values[i]) : float_to_bf16(values[i]);
    std::memcpy(t.mutable_data() + 2 * i, &bits, 2);
  }
  return t;
}

// logits = embedding(table [6, 3], tokens) * mix [3]
struct EmbedGraph {
  OpGraph g{31};
  ValueId logits;
  EmbedGraph() {
    ValueId x = g.random_sequence("table", 6, 3);
    logits = g.builder().mul(x, g.random_weight("mix", Shape{3}));
  }
};

}  // namespace

TEST_CASE("compile names a missing weight", "[cpu][compile]") {
  EmbedGraph e;
  e.g.weights().erase("mix");
  CHECK_THROWS_AS(e.g.compile(e.logits), std::invalid_argument);
  CHECK_THROWS_WITH(e.g.compile(e.logits), Catch::Contains("'mix'"));
}

TEST_CASE("compile names a weight of the wrong shape", "[cpu][compile]") {
  EmbedGraph e;
  e.g.weights()["mix"] = HostTensor::from_f32(Shape{4}, {1, 2, 3, 4});
  CHECK_THROWS_AS(e.g.compile(e.logits), std::invalid_argument);
  CHECK_THROWS_WITH(e.g.compile(e.logits), Catch::Contains("'mix'") && Catch::Contains("[4]"));
}

TEST_CASE("a weight stored [1, 1, C] binds to a [C] declaration", "[cpu][compile]") {
  EmbedGraph e;
  std::vector<double> mix = e.g.values("mix");
  e.g.weights()["mix"] = HostTensor::from_f32(Shape{1, 1, 3}, std::vector<float>(mix.begin(), mix.end()));
  auto exe = e.g.compile(e.logits);
  State state = exe->new_state();
  HostTensor got = exe->forward(first_tokens(2), state, {.all_logits = true});
  std::vector<double> table = e.g.values("table", 6), want;
  for (std::size_t i = 0; i < 6; ++i) want.push_back(table[i] * mix[i % 3]);
  CHECK(relative_error(got, want) <= kTolerance);
}

TEST_CASE("f16 and bf16 weights are converted to f32", "[cpu][compile]") {
  // Multiples of 1/8 below 4 are exact in f16 and bf16 alike.
  std::vector<float> b_values = {0.5f, -1.25f, 2.0f, 0.125f, -3.5f, 1.0f};
  for (DType dtype : {DType::f16, DType::bf16}) {
    DYNAMIC_SECTION(dtype_name(dtype)) {
      OpGraph g;
      ValueId a = g.random_sequence("a", 2, 3);
      ValueId b = g.builder().weight("b", TensorType{dtype, Shape{2, 3}});
      g.weights()["b"] = half_tensor(dtype, Shape{2, 3}, b_values);
      HostTensor got = g.run(g.builder().linear(a, b), 2);
      REQUIRE(got.shape() == Shape{2, 2});
      std::vector<double> x = g.values("a"), want;
      for (std::size_t t = 0; t < 2; ++t)
        for (std::size_t n = 0; n < 2; ++n) {
          double sum = 0;
          for (std::size_t k = 0; k < 3; ++k) sum += x[t * 3 + k] * b_values[n * 3 + k];
          want.push_back(sum);
        }
      CHECK(relative_error(got, want) <= kTolerance);
    }
  }
}

TEST_CASE("ops on weights alone, computed at compile time, feed the ops of each call", "[cpu][compile]") {
  // -exp(w) depends on no token (RWKV-4 derives its decay so); x + -exp(w) does.
  constexpr std::int64_t T = 3;
  OpGraph g;
  ValueId x = g.random_sequence("x", T, 4);
  ValueId w = g.random_weight("w", Shape{4});
  ValueId decay = g.builder().unary(OpKind::neg, g.builder().unary(OpKind::exp, w));
  HostTensor got = g.run(g.builder().add(x, decay), T);
  std::vector<double> xs = g.values("x"), ws = g.values("w"), want;
  for (std::size_t i = 0; i < xs.size(); ++i) want.push_back(xs[i] - std::exp(ws[i % 4]));
  CHECK(relative_error(got, want) <= kTolerance);
}

TEST_CASE("the vocabulary is the embedding table's rows", "[cpu][compile]") {
  EmbedGraph e;
  auto exe = e.g.compile(e.logits);
  CHECK(exe->vocab_size() == 6);
  State state = exe->new_state();

  SECTION("a token past the table names itself and its position") {
    std::vector<std::int32_t> tokens = {0, 5, 6};
    CHECK_THROWS_AS(exe->forward(tokens, state), std::invalid_argument);
    CHECK_THROWS_WITH(exe->forward(tokens, state), Catch::Contains("token 6 at position 2"));
  }
  SECTION("a negative token is refused") {
    std::vector<std::int32_t> tokens = {-1};
    CHECK_THROWS_WITH(exe->forward(tokens, state), Catch::Contains("token -1 at position 0"));
  }
  SECTION("an empty token list is refused") {
    CHECK_THROWS_AS(exe->forward({}, state), std::invalid_argument);
  }
}

TEST_CASE("a graph without an embedding accepts any non-negative token", "[cpu][compile]") {
  OpGraph g;
  auto exe = g.compile(g.random_weight("w", Shape{2}));
  CHECK(exe->vocab_size() == 0);
  State state = exe->new_state();
  std::vector<std::int32_t> tokens = {1'000'000, 0};
  HostTensor got = exe->forward(tokens, state);
  CHECK(relative_error(got, g.values("w")) == 0.0);
  std::vector<std::int32_t> negative = {-3};
  CHECK_THROWS_AS(exe->forward(negative, state), std::invalid_argument);
}

TEST_CASE("compile requires tokens and logits", "[cpu][compile]") {
  SECTION("no logits") {
    OpGraph g;
    g.random_weight("w", Shape{2});
    CHECK_THROWS_AS(make_cpu_backend()->compile(g.builder().graph(), g.weights()), IrError);
  }
  SECTION("no tokens") {
    GraphBuilder b("no_tokens");
    b.set_logits(b.weight("w", TensorType{DType::f32, Shape{2}}));
    WeightMap weights;
    weights["w"] = HostTensor::from_f32(Shape{2}, {1, 2});
    CHECK_THROWS_AS(make_cpu_backend()->compile(b.graph(), weights), IrError);
  }
}

TEST_CASE("compile rejects a malformed graph", "[cpu][compile]") {
  EmbedGraph e;
  e.g.builder().set_logits(e.logits);
  Graph graph = e.g.builder().graph();
  graph.ops.back().operands = {graph.ops.back().results[0], graph.ops.back().operands[1]};  // uses its own result
  CHECK_THROWS_AS(make_cpu_backend()->compile(graph, e.g.weights()), IrError);
}

TEST_CASE("forward returns the last row of [T, V] logits, or every row on request", "[cpu][compile]") {
  EmbedGraph e;
  auto exe = e.g.compile(e.logits);
  State first = exe->new_state(), second = exe->new_state();
  HostTensor last = exe->forward(first_tokens(4), first);
  HostTensor all = exe->forward(first_tokens(4), second, {.all_logits = true});
  REQUIRE(last.shape() == Shape{3});
  REQUIRE(all.shape() == Shape{4, 3});
  CHECK(std::vector<float>(last.f32().begin(), last.f32().end()) ==
        std::vector<float>(all.f32().begin() + 9, all.f32().end()));
}

}  // namespace rwkvc::test
