// Elementwise ops on the CPU backend against their definitions, broadcasting included.
#include <catch2/catch.hpp>

#include <functional>

#include "cpu_test_support.h"

namespace rwkvc::test {

namespace {

// An input as the expectation sees it: its data and concrete shape.
struct Operand {
  std::vector<double> data;
  Shape shape;
};

struct Input {
  ValueId value;
  Operand operand;
};

Input sequence_input(OpGraph& g, const std::string& key, std::int64_t seq_len, std::int64_t columns) {
  ValueId value = g.random_sequence(key, seq_len, columns, 0.5f, 2.0f);
  return {value, {g.values(key), Shape{seq_len, columns}}};
}

Input weight_input(OpGraph& g, const std::string& key, const Shape& shape) {
  ValueId value = g.random_weight(key, shape, 0.5f, 2.0f);  // away from 0: some ops divide by it
  return {value, {g.values(key), shape}};
}

Input constant_input(OpGraph& g, double value) { return {g.builder().constant(value), {{value}, Shape{}}}; }

// The element that output position `index` reads from `x` under NumPy broadcasting: x's
// dimensions align with the output's trailing ones, and a dimension of extent 1 always reads 0.
double broadcast_at(const Operand& x, const std::vector<std::int64_t>& index) {
  std::size_t offset = index.size() - x.shape.rank();
  std::int64_t flat = 0;
  for (std::size_t d = 0; d < x.shape.rank(); ++d) flat = flat * x.shape[d] + (x.shape[d] == 1 ? 0 : index[offset + d]);
  return x.data[static_cast<std::size_t>(flat)];
}

// f applied to each output position's broadcast operands, in row-major order.
std::vector<double> expect_elementwise(const Shape& out, const std::vector<const Operand*>& operands,
                                       const std::function<double(const std::vector<double>&)>& f) {
  std::vector<double> result;
  std::vector<std::int64_t> index(out.rank(), 0);
  for (std::int64_t n = 0; n < out.numel(); ++n) {
    std::int64_t rest = n;
    for (std::size_t d = out.rank(); d-- > 0;) {
      index[d] = rest % out[d];
      rest /= out[d];
    }
    std::vector<double> args;
    for (const Operand* x : operands) args.push_back(broadcast_at(*x, index));
    result.push_back(f(args));
  }
  return result;
}

double apply_binary(OpKind kind, double a, double b) {
  switch (kind) {
    case OpKind::add: return a + b;
    case OpKind::sub: return a - b;
    case OpKind::mul: return a * b;
    case OpKind::div: return a / b;
    default: throw std::logic_error("not a binary op");
  }
}

double apply_unary(OpKind kind, double x) {
  switch (kind) {
    case OpKind::exp: return std::exp(x);
    case OpKind::neg: return -x;
    case OpKind::sigmoid: return 1 / (1 + std::exp(-x));
    case OpKind::tanh: return std::tanh(x);
    case OpKind::softplus: return std::log1p(std::exp(x));
    case OpKind::relu: return x > 0 ? x : 0;
    case OpKind::square: return x * x;
    default: throw std::logic_error("not a unary op");
  }
}

constexpr std::int64_t T = 3;
constexpr std::int64_t C = 4;

// Broadcasting cases: the two operands and the result's shape.
struct BroadcastCase {
  const char* name;
  std::function<std::pair<Input, Input>(OpGraph&)> make;
  Shape out;
};

const std::vector<BroadcastCase>& broadcast_cases() {
  static const std::vector<BroadcastCase> cases = {
      {"[T, C] with [T, C]", [](OpGraph& g) { return std::pair{sequence_input(g, "a", T, C), sequence_input(g, "b", T, C)}; },
       Shape{T, C}},
      {"[T, C] with [C]", [](OpGraph& g) { return std::pair{sequence_input(g, "a", T, C), weight_input(g, "b", Shape{C})}; },
       Shape{T, C}},
      {"[T, C] with [1]", [](OpGraph& g) { return std::pair{sequence_input(g, "a", T, C), weight_input(g, "b", Shape{1})}; },
       Shape{T, C}},
      {"[T, C] with a scalar constant",
       [](OpGraph& g) { return std::pair{sequence_input(g, "a", T, C), constant_input(g, -1.25)}; }, Shape{T, C}},
      {"[C] with [T, C]", [](OpGraph& g) { return std::pair{weight_input(g, "a", Shape{C}), sequence_input(g, "b", T, C)}; },
       Shape{T, C}},
      {"[2, 3, 1] with [3, 4]",
       [](OpGraph& g) { return std::pair{weight_input(g, "a", Shape{2, 3, 1}), weight_input(g, "b", Shape{3, 4})}; },
       Shape{2, 3, 4}},
  };
  return cases;
}

}  // namespace

TEST_CASE("unary ops match their definitions", "[cpu][elementwise]") {
  for (OpKind kind : {OpKind::exp, OpKind::neg, OpKind::sigmoid, OpKind::tanh, OpKind::softplus, OpKind::relu,
                      OpKind::square}) {
    DYNAMIC_SECTION(op_name(kind)) {
      OpGraph g;
      Input x = sequence_input(g, "x", T, 5);
      HostTensor got = g.run(g.builder().unary(kind, x.value), T);
      CHECK(got.shape() == Shape{T, 5});
      std::vector<double> want;
      for (double v : x.operand.data) want.push_back(apply_unary(kind, v));
      CHECK(relative_error(got, want) <= kTolerance);
    }
  }
}

TEST_CASE("relu zeroes exactly the negative inputs", "[cpu][elementwise]") {
  OpGraph g;
  ValueId x = g.weight("x", Shape{4}, {-2.0f, 3.0f, -0.5f, 0.25f});
  HostTensor got = g.run(g.builder().unary(OpKind::relu, x), 1);
  CHECK(std::vector<float>(got.f32().begin(), got.f32().end()) == std::vector<float>{0.0f, 3.0f, 0.0f, 0.25f});
}

TEST_CASE("softplus stays finite where e^x overflows f32", "[cpu][elementwise]") {
  OpGraph g;
  std::vector<float> inputs = {100.0f, -100.0f, 30.0f, -30.0f, 0.5f, -0.5f};
  ValueId x = g.weight("x", Shape{6}, inputs);
  HostTensor got = g.run(g.builder().unary(OpKind::softplus, x), 1);
  for (float v : got.f32()) CHECK(std::isfinite(v));
  std::vector<double> want;
  for (float v : inputs) want.push_back(std::log1p(std::exp(static_cast<double>(v))));
  CHECK(relative_error(got, want) <= kTolerance);
}

TEST_CASE("binary ops broadcast like NumPy", "[cpu][elementwise]") {
  for (OpKind kind : {OpKind::add, OpKind::sub, OpKind::mul, OpKind::div}) {
    for (const BroadcastCase& c : broadcast_cases()) {
      DYNAMIC_SECTION(op_name(kind) << ": " << c.name) {
        OpGraph g;
        auto [a, b] = c.make(g);
        HostTensor got = g.run(g.builder().op1(kind, {a.value, b.value}), T);
        REQUIRE(got.shape() == c.out);
        std::vector<double> want = expect_elementwise(c.out, {&a.operand, &b.operand},
                                                      [&](const auto& args) { return apply_binary(kind, args[0], args[1]); });
        CHECK(relative_error(got, want) <= kTolerance);
      }
    }
  }
}

TEST_CASE("lerp is a + (b - a) * t with broadcasting", "[cpu][elementwise]") {
  auto lerp = [](const std::vector<double>& args) { return args[0] + (args[1] - args[0]) * args[2]; };
  SECTION("[T, C] towards [T, C] by [C]") {
    OpGraph g;
    Input a = sequence_input(g, "a", T, C), b = sequence_input(g, "b", T, C), t = weight_input(g, "t", Shape{C});
    HostTensor got = g.run(g.builder().lerp(a.value, b.value, t.value), T);
    REQUIRE(got.shape() == Shape{T, C});
    CHECK(relative_error(got, expect_elementwise(Shape{T, C}, {&a.operand, &b.operand, &t.operand}, lerp)) <= kTolerance);
  }
  SECTION("[C] towards [T, C] by a scalar constant") {
    OpGraph g;
    Input a = weight_input(g, "a", Shape{C}), b = sequence_input(g, "b", T, C), t = constant_input(g, 0.375);
    HostTensor got = g.run(g.builder().lerp(a.value, b.value, t.value), T);
    REQUIRE(got.shape() == Shape{T, C});
    CHECK(relative_error(got, expect_elementwise(Shape{T, C}, {&a.operand, &b.operand, &t.operand}, lerp)) <= kTolerance);
  }
  SECTION("[2, 1, 4] towards [3, 1] by [1]") {
    OpGraph g;
    Input a = weight_input(g, "a", Shape{2, 1, 4}), b = weight_input(g, "b", Shape{3, 1}), t = weight_input(g, "t", Shape{1});
    HostTensor got = g.run(g.builder().lerp(a.value, b.value, t.value), 1);
    REQUIRE(got.shape() == Shape{2, 3, 4});
    CHECK(relative_error(got, expect_elementwise(Shape{2, 3, 4}, {&a.operand, &b.operand, &t.operand}, lerp)) <= kTolerance);
  }
}

}  // namespace rwkvc::test
