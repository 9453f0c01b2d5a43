// Normalisations and reductions on the CPU backend against their definitions.
#include <catch2/catch.hpp>

#include "cpu_test_support.h"

namespace rwkvc::test {

namespace {

// (x - mean) / sqrt(var + eps) over consecutive runs of `width` values, biased variance.
std::vector<double> standardized(const std::vector<double>& x, std::size_t width, double eps) {
  std::vector<double> out;
  for (std::size_t start = 0; start < x.size(); start += width) {
    double mean = 0, var = 0;
    for (std::size_t i = start; i < start + width; ++i) mean += x[i] / static_cast<double>(width);
    for (std::size_t i = start; i < start + width; ++i) var += (x[i] - mean) * (x[i] - mean) / static_cast<double>(width);
    for (std::size_t i = start; i < start + width; ++i) out.push_back((x[i] - mean) / std::sqrt(var + eps));
  }
  return out;
}

// y * weight + bias, weight and bias indexed by the last axis.
std::vector<double> affine(std::vector<double> y, const std::vector<double>& weight, const std::vector<double>& bias) {
  for (std::size_t i = 0; i < y.size(); ++i) y[i] = y[i] * weight[i % weight.size()] + bias[i % bias.size()];
  return y;
}

}  // namespace

TEST_CASE("layer_norm normalises the last axis with the biased variance", "[cpu][norms]") {
  constexpr std::int64_t C = 8;
  constexpr double eps = 1e-5;
  SECTION("[T, C]") {
    constexpr std::int64_t T = 4;
    OpGraph g;
    ValueId x = g.random_sequence("x", T, C, 0.1f, 3.0f);
    ValueId y = g.builder().layer_norm(x, g.random_weight("w", Shape{C}), g.random_weight("b", Shape{C}), eps);
    HostTensor got = g.run(y, T);
    REQUIRE(got.shape() == Shape{T, C});
    CHECK(relative_error(got, affine(standardized(g.values("x"), C, eps), g.values("w"), g.values("b"))) <= kTolerance);
  }
  SECTION("[2, 3, C]") {
    OpGraph g;
    ValueId x = g.random_weight("x", Shape{2, 3, C}, 0.1f, 3.0f);
    ValueId y = g.builder().layer_norm(x, g.random_weight("w", Shape{C}), g.random_weight("b", Shape{C}), eps);
    HostTensor got = g.run(y, 1);
    REQUIRE(got.shape() == Shape{2, 3, C});
    CHECK(relative_error(got, affine(standardized(g.values("x"), C, eps), g.values("w"), g.values("b"))) <= kTolerance);
  }
}

TEST_CASE("layer_norm's eps matters for a row of nearly equal values", "[cpu][norms]") {
  // Variance 1e-4 against eps 1e-2: dropping eps would scale the result up tenfold.
  OpGraph g;
  ValueId x = g.weight("x", Shape{2}, {1.01f, 0.99f});
  ValueId y = g.builder().layer_norm(x, g.weight("w", Shape{2}, {1, 1}), g.weight("b", Shape{2}, {0.5f, 0.5f}), 1e-2);
  HostTensor got = g.run(y, 1);
  double scaled = 0.01 / std::sqrt(1e-4 + 1e-2);
  CHECK(relative_error(got, {0.5 + scaled, 0.5 - scaled}) <= kTolerance);
}

TEST_CASE("group_norm normalises each group of contiguous channels", "[cpu][norms]") {
  constexpr std::int64_t T = 3, C = 12;
  constexpr double eps = 64e-5;
  for (std::int64_t groups : {1, 3, 4}) {
    DYNAMIC_SECTION(groups << " groups") {
      OpGraph g;
      ValueId x = g.random_sequence("x", T, C, 0.1f, 3.0f);
      ValueId y = g.builder().group_norm(x, g.random_weight("w", Shape{C}), g.random_weight("b", Shape{C}), groups, eps);
      HostTensor got = g.run(y, T);
      REQUIRE(got.shape() == Shape{T, C});
      std::vector<double> want = affine(standardized(g.values("x"), C / groups, eps), g.values("w"), g.values("b"));
      CHECK(relative_error(got, want) <= kTolerance);
    }
  }
}

TEST_CASE("l2_norm divides each group by its Euclidean norm", "[cpu][norms]") {
  constexpr std::int64_t T = 3, C = 12;
  for (std::int64_t groups : {1, 3, 4}) {
    DYNAMIC_SECTION(groups << " groups") {
      OpGraph g;
      ValueId x = g.random_sequence("x", T, C);
      HostTensor got = g.run(g.builder().l2_norm(x, groups, 1e-12), T);
      REQUIRE(got.shape() == Shape{T, C});
      std::vector<double> in = g.values("x"), want;
      auto width = static_cast<std::size_t>(C / groups);
      for (std::size_t start = 0; start < in.size(); start += width) {
        double squares = 0;
        for (std::size_t i = start; i < start + width; ++i) squares += in[i] * in[i];
        for (std::size_t i = start; i < start + width; ++i) want.push_back(in[i] / std::sqrt(squares));
      }
      CHECK(relative_error(got, want) <= kTolerance);
    }
  }
}

TEST_CASE("l2_norm divides by eps where the group's norm is smaller", "[cpu][norms]") {
  // Group 0 has norm 0.05 < eps = 0.1; group 1 has norm 5.
  OpGraph g;
  ValueId x = g.weight("x", Shape{1, 4}, {0.03f, -0.04f, 3.0f, 4.0f});
  HostTensor got = g.run(g.builder().l2_norm(x, 2, 0.1), 1);
  CHECK(relative_error(got, {0.3, -0.4, 0.6, 0.8}) <= kTolerance);
}

TEST_CASE("reduce_sum sums the last axis and keeps it with extent 1", "[cpu][norms]") {
  SECTION("[2, 3, 5]") {
    OpGraph g;
    ValueId x = g.random_weight("x", Shape{2, 3, 5});
    HostTensor got = g.run(g.builder().op1(OpKind::reduce_sum, {x}), 1);
    REQUIRE(got.shape() == Shape{2, 3, 1});
    std::vector<double> in = g.values("x"), want(6, 0.0);
    for (std::size_t i = 0; i < in.size(); ++i) want[i / 5] += in[i];
    CHECK(relative_error(got, want) <= kTolerance);
  }
  SECTION("[T, 6]") {
    constexpr std::int64_t T = 4;
    OpGraph g;
    ValueId x = g.random_sequence("x", T, 6);
    HostTensor got = g.run(g.builder().op1(OpKind::reduce_sum, {x}), T);
    REQUIRE(got.shape() == Shape{T, 1});
    std::vector<double> in = g.values("x"), want(T, 0.0);
    for (std::size_t i = 0; i < in.size(); ++i) want[i / 6] += in[i];
    CHECK(relative_error(got, want) <= kTolerance);
  }
}

}  // namespace rwkvc::test
