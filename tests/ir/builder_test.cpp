// GraphBuilder: ops that do not type-check are refused with a message naming the op and the
// mismatch; finish() verifies the whole graph.
#include <catch2/catch.hpp>

#include "ir/builder.h"
#include "ir/error.h"

namespace rwkvc {

namespace {

TensorType f32(Shape shape) { return TensorType{DType::f32, std::move(shape)}; }

}  // namespace

TEST_CASE("the builder refuses ops whose operands do not type-check", "[ir][builder]") {
  GraphBuilder b("refusals");
  ValueId x = b.op1(OpKind::embedding, {b.weight("emb", f32({10, 8})), b.tokens()}, {}, "x");

  SECTION("matmul inner dimensions") {
    ValueId w = b.weight("w", f32({6, 4}));
    CHECK_THROWS_MATCHES(b.linear(x, w), IrError,
                         Catch::Message("op #1 matmul(%x, %w): inner dimensions differ: input [T, 8] and matrix "
                                        "[6, 4] (transposed)"));
  }
  SECTION("broadcasting") {
    ValueId bias = b.weight("bias", f32({3}));
    CHECK_THROWS_MATCHES(b.add(x, bias), IrError,
                         Catch::Message("op #1 add(%x, %bias): shapes [T, 8] and [3] do not broadcast"));
  }
  SECTION("a missing attribute") {
    ValueId w = b.weight("ln.weight", f32({8}));
    ValueId bias = b.weight("ln.bias", f32({8}));
    CHECK_THROWS_MATCHES(b.op1(OpKind::layer_norm, {x, w, bias}), IrError,
                         Catch::Message("op #1 layer_norm(%x, %ln.weight, %ln.bias): missing attribute 'eps'"));
  }
  SECTION("a wkv7 state that does not match the channels") {
    ValueId state = b.state("wkv", f32({2, 2, 2}));
    CHECK_THROWS_WITH(b.op(OpKind::wkv7, {x, x, x, x, x, x, state}),
                      Catch::StartsWith("op #1 wkv7(") && Catch::EndsWith("r (operand 0) must be f32[T, 4] to match "
                                                                           "the state [2, 2, 2], got f32[T, 8]"));
  }
  SECTION("embedding with float tokens") {
    ValueId table = b.weight("table", f32({10, 8}));
    CHECK_THROWS_WITH(b.op1(OpKind::embedding, {table, x}),
                      Catch::Contains("embedding") && Catch::Contains("tokens (operand 1) must be i32, got f32[T, 8]"));
  }
  // A refused op leaves the graph as it was.
  CHECK(b.graph().ops.size() == 1);
}

TEST_CASE("the builder names values by scope and keeps names unique", "[ir][builder]") {
  GraphBuilder b("names");
  ValueId x = b.weight("x", f32({4}));
  b.set_scope("blocks.0.");
  ValueId first = b.unary(OpKind::exp, x, "e");
  ValueId second = b.unary(OpKind::exp, first, "e");
  ValueId unnamed = b.unary(OpKind::neg, second);
  CHECK(b.graph().value(first).name == "blocks.0.e");
  CHECK(b.graph().value(second).name == "blocks.0.e.1");
  CHECK(b.graph().value(unnamed).name == "blocks.0.neg");
}

TEST_CASE("finish verifies the graph", "[ir][builder]") {
  GraphBuilder b("unfinished");
  b.state("s", f32({4}));
  CHECK_THROWS_MATCHES(b.finish(), IrError, Catch::Message("state 's' has no output: nothing writes its next value"));
}

}  // namespace rwkvc
