// The verifier, one kind of mistake per section: each starts from a valid graph, breaks one
// thing by editing the Graph struct (the builder refuses bad ops), and expects a message that
// names the op or declaration at fault and the mismatch.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "ir/builder.h"
#include "ir/error.h"
#include "ir/verifier.h"

namespace rwkvc {

namespace {

TensorType f32(Shape shape) { return TensorType{DType::f32, std::move(shape)}; }

// op #0 embedding (%x), #1 layer_norm (%x.ln), #2 token_shift (%shifted), #3 last_row (%last),
// #4 matmul (%r), #5 add (%mix), #6 wkv7 (%y, %wkv.next), #7 matmul (%logits).
Graph valid_graph() {
  constexpr Dim V = 10, C = 8, H = 2, N = 4;
  GraphBuilder b("base");
  ValueId table = b.weight("emb", f32({V, C}));
  ValueId x = b.op1(OpKind::embedding, {table, b.tokens()}, {}, "x");
  ValueId ln_weight = b.weight("ln.weight", f32({C}));
  ValueId ln_bias = b.weight("ln.bias", f32({C}));
  x = b.layer_norm(x, ln_weight, ln_bias, 1e-5, "x.ln");
  ValueId shifted = b.op1(OpKind::token_shift, {x, b.state("shift", f32({C}))}, {}, "shifted");
  b.state_out("shift", b.op1(OpKind::last_row, {x}, {}, "last"));
  ValueId r = b.linear(shifted, b.weight("r.weight", f32({C, C})), "r");
  ValueId mix = b.add(r, b.weight("bias", f32({C})), "mix");
  auto wkv = b.op(OpKind::wkv7, {r, mix, r, r, r, r, b.state("wkv", f32({H, N, N}))}, {}, {"y", "wkv.next"});
  b.state_out("wkv", wkv[1]);
  b.set_logits(b.linear(wkv[0], b.weight("head", f32({V, C})), "logits"));
  return b.finish();
}

ValueId id_of(const Graph& g, std::string_view name) {
  for (std::size_t i = 0; i < g.values.size(); ++i)
    if (g.values[i].name == name) return static_cast<ValueId>(i);
  FAIL("no value named " << name);
  return kNoValue;
}

Op& op_defining(Graph& g, std::string_view name) {
  for (Op& op : g.ops)
    if (!op.results.empty() && g.value(op.results[0]).name == name) return op;
  FAIL("no op defines " << name);
  return g.ops.front();
}

}  // namespace

TEST_CASE("a well-formed graph verifies", "[ir][verifier]") {
  Graph g = valid_graph();
  CHECK(verify_error(g).empty());
  CHECK_NOTHROW(verify(g));
}

TEST_CASE("verify throws IrError with verify_error's message", "[ir][verifier]") {
  Graph g = valid_graph();
  g.states[0].output = kNoValue;
  REQUIRE_FALSE(verify_error(g).empty());
  CHECK_THROWS_MATCHES(verify(g), IrError, Catch::Message(verify_error(g)));
}

TEST_CASE("the verifier rejects malformed ops, naming the op and the mismatch", "[ir][verifier]") {
  Graph g = valid_graph();

  SECTION("an operand used before the op that defines it") {
    op_defining(g, "x.ln").operands[0] = id_of(g, "r");
    CHECK(verify_error(g) ==
          "op #1 layer_norm (%x.ln): operand 0 %r is used before its definition by op #4 matmul (%r)");
  }
  SECTION("an operand id outside the value table") {
    op_defining(g, "mix").operands[1] = 99;
    CHECK(verify_error(g) == "op #5 add (%mix): operand 1 is value #99, which does not exist");
  }
  SECTION("the wrong number of operands") {
    op_defining(g, "mix").operands.pop_back();
    CHECK(verify_error(g) == "op #5 add (%mix): expects 2 operands, got 1");
  }
  SECTION("a missing attribute") {
    op_defining(g, "x.ln").attrs.erase("eps");
    CHECK(verify_error(g) == "op #1 layer_norm (%x.ln): missing attribute 'eps' (a float)");
  }
  SECTION("an unknown attribute") {
    op_defining(g, "mix").attrs["alpha"] = 1.0;
    CHECK(verify_error(g) == "op #5 add (%mix): unknown attribute 'alpha'");
  }
  SECTION("an attribute of the wrong kind") {
    op_defining(g, "r").attrs["transpose_b"] = 1.0;
    CHECK(verify_error(g) == "op #4 matmul (%r): attribute 'transpose_b' must be an integer, got the float 1");
  }
  SECTION("a result type that differs from the inferred one") {
    g.values[id_of(g, "mix")].type = f32({kSeq, 4});
    CHECK(verify_error(g) == "op #5 add (%mix): result 0 %mix has type f32[T, 4], but the operands give f32[T, 8]");
  }
  SECTION("matmul operands whose inner dimensions differ") {
    g.values[id_of(g, "r.weight")].type = f32({8, 6});
    CHECK(verify_error(g) ==
          "op #4 matmul (%r): inner dimensions differ: input [T, 8] and matrix [8, 6] (transposed)");
  }
  SECTION("elementwise operands that do not broadcast") {
    g.values[id_of(g, "bias")].type = f32({5});
    CHECK(verify_error(g) == "op #5 add (%mix): shapes [T, 8] and [5] do not broadcast");
  }
  SECTION("a wkv7 state whose heads are not square") {
    g.values[id_of(g, "wkv")].type = f32({2, 4, 2});
    g.values[id_of(g, "wkv.next")].type = f32({2, 4, 2});
    CHECK(verify_error(g) == "op #6 wkv7 (%y): state (operand 6) must be f32[H, N, N], got f32[2, 4, 2]");
  }
  SECTION("an op kind outside the op table") {
    g.ops[0].kind = static_cast<OpKind>(99);
    CHECK(verify_error(g) == "op #0 has no kind in the op table (99)");
  }
}

TEST_CASE("the verifier rejects malformed value tables", "[ir][verifier]") {
  Graph g = valid_graph();

  SECTION("a duplicate value name") {
    ValueId r = id_of(g, "r"), mix = id_of(g, "mix");
    g.values[mix].name = "r";
    CHECK(verify_error(g) == fmt::format("value name %r is used twice: values #{} and #{}", r, mix));
  }
  SECTION("a name with a character outside the charset") {
    ValueId id = id_of(g, "x.ln");
    g.values[id].name = "x ln";
    CHECK(verify_error(g) == fmt::format("value #{} 'x ln': the character ' ' is outside [A-Za-z0-9_.-]", id));
  }
  SECTION("an empty name") {
    ValueId id = id_of(g, "x.ln");
    g.values[id].name = "";
    CHECK(verify_error(g) == fmt::format("value #{} has an empty name", id));
  }
  SECTION("a value defined twice") {
    op_defining(g, "mix").results[0] = id_of(g, "bias");
    CHECK(verify_error(g) == "value %bias is defined twice: by weight 'bias' and by op #5 add (%bias)");
  }
  SECTION("a value that nothing defines") {
    g.values.push_back(Value{"stray", f32({1})});
    CHECK(verify_error(g) ==
          fmt::format("value %stray (#{}) is defined by no declaration and no op", g.values.size() - 1));
  }
}

TEST_CASE("the verifier checks the graph's interface", "[ir][verifier]") {
  Graph g = valid_graph();

  SECTION("tokens that are not i32[T]") {
    g.values[g.tokens].type = TensorType{DType::i32, Shape{4}};
    CHECK(verify_error(g) == "tokens input %tokens has type i32[4], expected i32[T]");
    g.values[g.tokens].type = f32({kSeq});
    CHECK(verify_error(g) == "tokens input %tokens has type f32[T], expected i32[T]");
  }
  SECTION("a graph without tokens or logits is fine (single-op graphs)") {
    GraphBuilder b("single");
    ValueId x = b.weight("x", f32({4}));
    b.unary(OpKind::exp, x);
    CHECK(verify_error(b.graph()).empty());
  }
  SECTION("a weight whose shape depends on T") {
    g.values[id_of(g, "bias")].type = f32({kSeq});
    CHECK(verify_error(g) == "weight 'bias' (%bias) has type f32[T]: a weight's shape cannot depend on T");
  }
  SECTION("a weight key declared twice") {
    g.weights[1].key = "emb";
    CHECK(verify_error(g) == "weight key 'emb' is declared twice: %emb and %ln.weight");
  }
  SECTION("a state slot declared twice") {
    g.states[1].slot = "shift";
    CHECK(verify_error(g) == "state slot 'shift' is declared twice: %shift and %wkv");
  }
  SECTION("a state that is not f32") {
    g.values[id_of(g, "shift")].type = TensorType{DType::f16, Shape{8}};
    CHECK(verify_error(g) ==
          "state 'shift' (%shift) has type f16[8]: a state is f32 with a shape that cannot depend on T");
  }
  SECTION("a state without an output") {
    g.states[0].output = kNoValue;
    CHECK(verify_error(g) == "state 'shift' has no output: nothing writes its next value");
  }
  SECTION("a state output of the wrong type") {
    g.states[1].output = id_of(g, "y");
    CHECK(verify_error(g) == "state 'wkv': output %y has type f32[T, 8], expected f32[2, 4, 4]");
  }
  SECTION("logits that are not a float value") {
    g.logits = g.tokens;
    CHECK(verify_error(g) == "logits %tokens has type i32[T], expected a float type");
  }
  SECTION("logits outside the value table") {
    g.logits = 1000;
    CHECK(verify_error(g) == "logits is value #1000, which does not exist");
  }
}

}  // namespace rwkvc
