// Row-moving ops (embedding, token_shift, last_row, reshape) and constants on the CPU backend.
#include <catch2/catch.hpp>

#include "cpu_test_support.h"

namespace rwkvc::test {

namespace {

std::vector<float> as_vector(const HostTensor& t) { return {t.f32().begin(), t.f32().end()}; }

}  // namespace

TEST_CASE("embedding gathers the table row of each token", "[cpu][sequence]") {
  constexpr std::int64_t V = 6, C = 4;
  OpGraph g;
  ValueId table = g.random_weight("table", Shape{V, C});
  auto exe = g.compile(g.builder().op1(OpKind::embedding, {table, g.tokens()}));
  std::vector<std::int32_t> tokens = {3, 0, 3, 5};
  State state = exe->new_state();
  HostTensor got = exe->forward(tokens, state, {.all_logits = true});
  REQUIRE(got.shape() == Shape{4, C});
  std::vector<double> rows = g.values("table"), want;
  for (std::int32_t token : tokens)
    for (std::int64_t c = 0; c < C; ++c) want.push_back(rows[static_cast<std::size_t>(token * C + c)]);
  CHECK(relative_error(got, want) == 0.0);
}

TEST_CASE("token_shift puts the previous row first and drops the last row", "[cpu][sequence]") {
  constexpr std::int64_t C = 3;
  for (std::int64_t T : {1, 4}) {
    DYNAMIC_SECTION("T " << T) {
      OpGraph g;
      ValueId x = g.random_sequence("x", 4, C);
      ValueId previous = g.random_weight("previous", Shape{C});
      HostTensor got = g.run(g.builder().op1(OpKind::token_shift, {x, previous}), T);
      REQUIRE(got.shape() == Shape{T, C});
      std::vector<double> want = g.values("previous");
      std::vector<double> rows = g.values("x", static_cast<std::size_t>((T - 1) * C));
      want.insert(want.end(), rows.begin(), rows.end());
      CHECK(relative_error(got, want) == 0.0);
    }
  }
}

TEST_CASE("last_row returns the row of the last token without the T dimension", "[cpu][sequence]") {
  constexpr std::int64_t C = 3;
  for (std::int64_t T : {1, 4}) {
    DYNAMIC_SECTION("T " << T) {
      OpGraph g;
      ValueId x = g.random_sequence("x", 4, C);
      HostTensor got = g.run(g.builder().op1(OpKind::last_row, {x}), T);
      REQUIRE(got.shape() == Shape{C});
      std::vector<double> rows = g.values("x");
      std::vector<double> want(rows.begin() + (T - 1) * C, rows.begin() + T * C);
      CHECK(relative_error(got, want) == 0.0);
    }
  }
}

TEST_CASE("last_row of a rank-3 sequence keeps the other dimensions", "[cpu][sequence]") {
  constexpr std::int64_t T = 3;
  OpGraph g;
  ValueId x = g.builder().reshape(g.random_sequence("x", T, 6), {kSeq, 2, 3});
  HostTensor got = g.run(g.builder().op1(OpKind::last_row, {x}), T);
  REQUIRE(got.shape() == Shape{2, 3});
  std::vector<double> rows = g.values("x");
  CHECK(relative_error(got, std::vector<double>(rows.end() - 6, rows.end())) == 0.0);
}

TEST_CASE("reshape keeps the row-major order of the elements", "[cpu][sequence]") {
  SECTION("[T, 6] to [T, 2, 3]") {
    constexpr std::int64_t T = 3;
    OpGraph g;
    ValueId x = g.random_sequence("x", T, 6);
    HostTensor got = g.run(g.builder().reshape(x, {kSeq, 2, 3}), T);
    REQUIRE(got.shape() == Shape{T, 2, 3});
    CHECK(relative_error(got, g.values("x")) == 0.0);
  }
  SECTION("[2, 6] to [3, 4]") {
    OpGraph g;
    ValueId x = g.random_weight("x", Shape{2, 6});
    HostTensor got = g.run(g.builder().reshape(x, {3, 4}), 1);
    REQUIRE(got.shape() == Shape{3, 4});
    CHECK(relative_error(got, g.values("x")) == 0.0);
  }
}

TEST_CASE("constant is an f32 scalar holding its value", "[cpu][sequence]") {
  OpGraph g;
  HostTensor got = g.run(g.builder().constant(-2.5), 1);
  CHECK(got.shape() == Shape{});
  CHECK(as_vector(got) == std::vector<float>{-2.5f});
}

TEST_CASE("a constant rounds to the nearest f32", "[cpu][sequence]") {
  OpGraph g;
  HostTensor got = g.run(g.builder().constant(0.1), 1);
  CHECK(as_vector(got) == std::vector<float>{0.1f});
}

}  // namespace rwkvc::test
