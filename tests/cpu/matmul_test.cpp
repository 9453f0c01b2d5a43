// matmul on the CPU backend, both weight layouts, against the textbook triple loop.
#include <catch2/catch.hpp>

#include "cpu_test_support.h"

namespace rwkvc::test {

namespace {

// out[m][n] = sum over k of a[m][k] * B(k, n), with B stored [N, K] (transpose_b) or [K, N].
std::vector<double> expect_matmul(const std::vector<double>& a, const std::vector<double>& b, std::int64_t rows,
                                  std::int64_t inner, std::int64_t cols, bool transpose_b) {
  std::vector<double> out;
  for (std::int64_t m = 0; m < rows; ++m)
    for (std::int64_t n = 0; n < cols; ++n) {
      double sum = 0;
      for (std::int64_t k = 0; k < inner; ++k)
        sum += a[static_cast<std::size_t>(m * inner + k)] *
               b[static_cast<std::size_t>(transpose_b ? n * inner + k : k * cols + n)];
      out.push_back(sum);
    }
  return out;
}

Shape weight_shape(bool transpose_b, std::int64_t inner, std::int64_t cols) {
  return transpose_b ? Shape{cols, inner} : Shape{inner, cols};
}

ValueId product(OpGraph& g, ValueId a, ValueId b, bool transpose_b) {
  return transpose_b ? g.builder().linear(a, b) : g.builder().matmul(a, b);
}

}  // namespace

TEST_CASE("matmul computes a B^T or a B for [T, K] inputs", "[cpu][matmul]") {
  constexpr std::int64_t K = 7, N = 3;
  for (bool transpose_b : {true, false}) {
    for (std::int64_t T : {1, 5}) {
      DYNAMIC_SECTION("transpose_b " << transpose_b << ", T " << T) {
        OpGraph g;
        ValueId a = g.random_sequence("a", 5, K);
        ValueId b = g.random_weight("b", weight_shape(transpose_b, K, N));
        HostTensor got = g.run(product(g, a, b, transpose_b), T);
        REQUIRE(got.shape() == Shape{T, N});
        std::vector<double> want =
            expect_matmul(g.values("a", static_cast<std::size_t>(T * K)), g.values("b"), T, K, N, transpose_b);
        CHECK(relative_error(got, want) <= kTolerance);
      }
    }
  }
}

TEST_CASE("matmul multiplies every row of a rank-3 input", "[cpu][matmul]") {
  constexpr std::int64_t K = 5, N = 9;
  for (bool transpose_b : {true, false}) {
    DYNAMIC_SECTION("transpose_b " << transpose_b) {
      OpGraph g;
      ValueId a = g.random_weight("a", Shape{2, 3, K});
      ValueId b = g.random_weight("b", weight_shape(transpose_b, K, N));
      HostTensor got = g.run(product(g, a, b, transpose_b), 1);
      REQUIRE(got.shape() == Shape{2, 3, N});
      CHECK(relative_error(got, expect_matmul(g.values("a"), g.values("b"), 6, K, N, transpose_b)) <= kTolerance);
    }
  }
}

TEST_CASE("matmul split over threads by output column matches the loop", "[cpu][matmul]") {
  // 5 x 32 x 3401 multiply-adds: enough work for several threads, and a column count that
  // does not divide evenly between them.
  constexpr std::int64_t T = 5, K = 32, N = 3401;
  for (bool transpose_b : {true, false}) {
    DYNAMIC_SECTION("transpose_b " << transpose_b) {
      OpGraph g;
      ValueId a = g.random_sequence("a", T, K);
      ValueId b = g.random_weight("b", weight_shape(transpose_b, K, N));
      HostTensor got = g.run(product(g, a, b, transpose_b), T);
      REQUIRE(got.shape() == Shape{T, N});
      CHECK(relative_error(got, expect_matmul(g.values("a"), g.values("b"), T, K, N, transpose_b)) <= kTolerance);
    }
  }
}

}  // namespace rwkvc::test
