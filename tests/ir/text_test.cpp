// The textual form: print_graph's output parses back to an equal graph (value ids, names,
// types, attributes, interface) and prints again to the same text.
#include <bit>
#include <cmath>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include <catch2/catch.hpp>

#include "ir/builder.h"
#include "ir/error.h"
#include "ir/text.h"

namespace rwkvc {

namespace {

TensorType f32(Shape shape) { return TensorType{DType::f32, std::move(shape)}; }

// A small RWKV-like layer (C = 8, 2 heads of 4) that uses every op of the op table, with
// weights and states declared between ops, the way the model builders declare them.
Graph rwkv_like_layer() {
  constexpr Dim V = 16, C = 8, H = 2, N = 4, D = 3;
  GraphBuilder b("toy_layer");
  ValueId x = b.op1(OpKind::embedding, {b.weight("emb.weight", f32({V, C})), b.tokens()}, {}, "x.emb");
  x = b.layer_norm(x, b.weight("ln0.weight", f32({C})), b.weight("ln0.bias", f32({C})), 1e-5, "x.ln0");

  b.set_scope("att.");
  ValueId previous = b.state("att.shift", f32({C}));
  b.state_out("att.shift", b.op1(OpKind::last_row, {x}, {}, "last"));
  ValueId shifted = b.op1(OpKind::token_shift, {x, previous}, {}, "shifted");
  ValueId xr = b.lerp(x, shifted, b.weight("att.x_r", f32({C})), "xr");
  ValueId r = b.linear(xr, b.weight("att.receptance.weight", f32({C, C})), "r");
  ValueId k = b.linear(xr, b.weight("att.key.weight", f32({C, C})), "k");
  ValueId v = b.linear(xr, b.weight("att.value.weight", f32({C, C})), "v");

  ValueId lora = b.matmul(b.unary(OpKind::tanh, b.matmul(xr, b.weight("att.w1", f32({C, D}))), "w.act"),
                          b.weight("att.w2", f32({D, C})), "w.up");
  ValueId w = b.add(b.weight("att.w0", f32({C})), lora, "w");
  ValueId decay = b.unary(OpKind::exp, b.mul(b.unary(OpKind::sigmoid, w), b.constant(-std::exp(-0.5), "neg_exp_half")),
                          "decay");
  ValueId kk = b.l2_norm(k, H, 1e-12, "kk");
  ValueId a = b.unary(OpKind::sigmoid, b.weight("att.a0", f32({C})), "a");
  ValueId state = b.state("att.wkv", f32({H, N, N}));
  auto wkv = b.op(OpKind::wkv7, {r, decay, k, v, b.unary(OpKind::neg, kk), b.mul(kk, a), state}, {},
                  {"wkv", "wkv.state"});
  b.state_out("att.wkv", wkv[1]);
  ValueId y = b.group_norm(wkv[0], b.weight("att.ln_x.weight", f32({C})), b.weight("att.ln_x.bias", f32({C})), H,
                           64e-5, "y.norm");
  ValueId rk_sum = b.op1(OpKind::reduce_sum, {b.reshape(b.mul(r, k), {kSeq, H, N})}, {}, "rk.sum");
  y = b.add(y, b.reshape(b.mul(rk_sum, b.reshape(v, {kSeq, H, N})), {kSeq, C}), "y");

  // An RWKV-4 step on the same inputs; pp starts at -1e30.
  b.set_scope("att4.");
  ValueId w4 = b.unary(OpKind::neg, b.unary(OpKind::exp, b.weight("att4.time_decay", f32({C}))), "w");
  ValueId aa = b.state("att4.aa", f32({C}));
  ValueId bb = b.state("att4.bb", f32({C}));
  ValueId pp = b.state("att4.pp", f32({C}), -1e30);
  auto wkv4 = b.op(OpKind::wkv4, {w4, b.weight("att4.time_first", f32({C})), k, v, aa, bb, pp}, {},
                   {"wkv", "aa.next", "bb.next", "pp.next"});
  b.state_out("att4.aa", wkv4[1]);
  b.state_out("att4.bb", wkv4[2]);
  b.state_out("att4.pp", wkv4[3]);
  ValueId scaled = b.op1(OpKind::div, {wkv4[0], b.add(b.unary(OpKind::softplus, v), b.constant(0.1, "tenth"))});
  y = b.add(y, b.sub(scaled, b.mul(b.constant(-1e30, "huge"), b.constant(64e-5, "eps"))), "y.sum");

  b.set_scope("ffn.");
  ValueId hidden = b.unary(OpKind::square, b.unary(OpKind::relu, b.linear(y, b.weight("ffn.key.weight", f32({C, C})))));
  b.set_scope("");
  b.set_logits(b.linear(hidden, b.weight("head.weight", f32({V, C})), "logits"));
  return b.finish();
}

std::string read_fixture(const std::string& name) {
  std::ifstream in(std::string(RWKVC_SOURCE_DIR) + "/tests/ir/" + name);
  REQUIRE(in);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The message parse_graph throws; fails the test if it accepts the text.
std::string parse_error(std::string_view text) {
  try {
    parse_graph(text);
  } catch (const IrError& e) {
    return e.what();
  }
  FAIL("parse_graph accepted:\n" << text);
  return {};
}

}  // namespace

TEST_CASE("the round-trip layer uses every op of the op table", "[ir][text]") {
  Graph graph = rwkv_like_layer();
  std::set<OpKind> used;
  for (const Op& op : graph.ops) used.insert(op.kind);
  for (const OpInfo& info : all_ops()) {
    INFO("op " << info.name);
    CHECK(used.contains(info.kind));
  }
}

TEST_CASE("a printed graph parses back to an equal graph and prints identically", "[ir][text]") {
  Graph graph = rwkv_like_layer();
  std::string text = print_graph(graph);
  INFO(text);
  Graph parsed = parse_graph(text);
  CHECK(parsed.values == graph.values);
  CHECK(parsed.weights == graph.weights);
  CHECK(parsed.states == graph.states);
  CHECK(parsed.ops == graph.ops);
  CHECK(parsed == graph);
  CHECK(print_graph(parsed) == text);
}

TEST_CASE("float attributes and state inits survive the text bit for bit", "[ir][text]") {
  const double values[] = {0.1,
                           -1e30,
                           64e-5,
                           std::exp(-0.5),
                           1e-5,
                           1.0,
                           -0.0,
                           123456789.0,
                           1.0 / 3.0,
                           5e-324,  // the smallest subnormal
                           std::numeric_limits<double>::max(),
                           -std::numeric_limits<double>::infinity()};
  GraphBuilder b("floats");
  for (double value : values) {
    b.constant(value, "c");
    b.state("s" + std::to_string(b.graph().states.size()), f32({1}), value);
  }
  for (const StateDecl& s : b.graph().states) b.state_out(s.slot, s.input);
  Graph graph = b.finish();

  Graph parsed = parse_graph(print_graph(graph));
  REQUIRE(parsed.ops.size() == std::size(values));
  for (std::size_t i = 0; i < std::size(values); ++i) {
    INFO("value " << values[i]);
    CHECK(std::bit_cast<std::uint64_t>(parsed.ops[i].float_attr("value")) == std::bit_cast<std::uint64_t>(values[i]));
    CHECK(std::bit_cast<std::uint64_t>(parsed.states[i].init) == std::bit_cast<std::uint64_t>(values[i]));
  }
}

TEST_CASE("an integral float attribute stays a float and an integer stays an integer", "[ir][text]") {
  GraphBuilder b("kinds");
  ValueId x = b.weight("x", f32({4}));
  b.l2_norm(x, 2, 1.0);
  Graph parsed = parse_graph(print_graph(b.finish()));
  const Attrs& attrs = parsed.ops.at(0).attrs;
  CHECK(std::holds_alternative<double>(attrs.at("eps")));
  CHECK(std::holds_alternative<std::int64_t>(attrs.at("groups")));
}

TEST_CASE("the printer writes one line per declaration and op, in value-id order", "[ir][text]") {
  GraphBuilder b("tiny");
  ValueId table = b.weight("emb", f32({3, 4}));
  ValueId x = b.op1(OpKind::embedding, {table, b.tokens()}, {}, "x");
  ValueId shifted = b.op1(OpKind::token_shift, {x, b.state("s", f32({4}))}, {}, "shifted");
  b.state_out("s", b.op1(OpKind::last_row, {shifted}, {}, "last"));
  ValueId weight = b.weight("w", f32({4}));
  ValueId bias = b.weight("b", f32({4}));
  ValueId y = b.layer_norm(shifted, weight, bias, 0.5, "y");
  b.set_logits(b.reshape(y, {kSeq, 2, 2}, "heads"));
  // The weights and the state declared after the first op keep their places.
  CHECK(print_graph(b.finish()) ==
        "graph tiny {\n"
        "  weight %emb = \"emb\" : f32[3, 4]\n"
        "  input %tokens : i32[T]\n"
        "  %x = embedding(%emb, %tokens) : f32[T, 4]\n"
        "  state %s = \"s\" init 0.0 : f32[4]\n"
        "  %shifted = token_shift(%x, %s) : f32[T, 4]\n"
        "  %last = last_row(%shifted) : f32[4]\n"
        "  weight %w = \"w\" : f32[4]\n"
        "  weight %b = \"b\" : f32[4]\n"
        "  %y = layer_norm(%shifted, %w, %b) {eps = 0.5} : f32[T, 4]\n"
        "  %heads = reshape(%y) {shape = [T, 2, 2]} : f32[T, 2, 2]\n"
        "  output logits = %heads\n"
        "  state_out \"s\" = %last\n"
        "}\n");
}

TEST_CASE("names that are not identifiers print as quoted strings", "[ir][text]") {
  GraphBuilder b("rwkv-7 \"tiny\"");
  b.weight("w", f32({2}));
  Graph graph = b.finish();
  graph.weights[0].key = "odd key\\with \"quotes\"\n";
  std::string text = print_graph(graph);
  CHECK(text.starts_with("graph \"rwkv-7 \\\"tiny\\\"\" {\n"));
  CHECK(text.find("weight %w = \"odd key\\\\with \\\"quotes\\\"\\x0a\" : f32[2]") != std::string::npos);
  CHECK(parse_graph(text) == graph);
}

TEST_CASE("a hand-written fixture parses to the graph it describes", "[ir][text]") {
  Graph g = parse_graph(read_fixture("small_layer.ir"));
  CHECK(g.name == "small_layer");

  // Values are numbered in the order the text defines them.
  REQUIRE(g.values.size() >= 3);
  CHECK(g.values[0].name == "tokens");
  CHECK(g.values[1].name == "emb");
  CHECK(g.values[2].name == "x");
  CHECK(g.tokens == 0);
  CHECK(g.type(g.tokens) == TensorType{DType::i32, Shape{kSeq}});

  REQUIRE(g.weights.size() == 5);
  CHECK(g.weights[0] == WeightDecl{1, "emb.weight"});
  CHECK(g.weights[2].key == "att.receptance.weight");
  CHECK(g.type(g.weights[4].value) == TensorType{DType::bf16, Shape{10, 8}});

  REQUIRE(g.ops.size() == 12);
  CHECK(g.ops[0].kind == OpKind::embedding);
  CHECK(g.ops[3].kind == OpKind::lerp);
  CHECK(g.ops[4].kind == OpKind::matmul);
  CHECK(g.ops[4].int_attr("transpose_b") == 1);
  CHECK(g.ops[5].kind == OpKind::matmul);
  CHECK(g.ops[5].int_attr("transpose_b") == 0);
  CHECK(g.type(g.ops[5].results[0]) == f32({kSeq, 3}));
  CHECK(g.ops[6].kind == OpKind::constant);
  CHECK(g.ops[6].float_attr("value") == 0.5);
  CHECK(g.ops[8].kind == OpKind::wkv7);
  CHECK(g.ops[8].results.size() == 2);
  CHECK(g.ops[9].kind == OpKind::reshape);
  CHECK(g.ops[9].ints_attr("shape") == std::vector<std::int64_t>{kSeq, 2, 4});
  CHECK(g.type(g.ops[10].results[0]) == f32({kSeq, 2, 1}));

  REQUIRE(g.states.size() == 3);
  CHECK(g.states[0].slot == "att.shift");
  CHECK(g.states[0].output == g.ops[2].results[0]);
  CHECK(g.states[1].output == g.ops[8].results[1]);
  CHECK(g.states[2].init == -1e30);
  CHECK(g.states[2].output == g.states[2].input);
  CHECK(g.value(g.logits).name == "logits");
  CHECK(g.type(g.logits) == f32({kSeq, 10}));

  CHECK(parse_graph(print_graph(g)) == g);
}

TEST_CASE("parse errors give the line and column of the token at fault", "[ir][text][errors]") {
  SECTION("unknown op") {
    CHECK(parse_error(R"(graph g {
  input %tokens : i32[T]
  %x = frobnicate(%tokens) : f32[T]
})") == "line 3, column 8: unknown op 'frobnicate'");
  }
  SECTION("undefined value") {
    CHECK(parse_error(R"(graph g {
  weight %w = "w" : f32[4]
  %y = exp(%v) : f32[4]
})") == "line 3, column 12: undefined value %v");
  }
  SECTION("a value used before the line that defines it") {
    CHECK(parse_error(R"(graph g {
  %y = exp(%w) : f32[4]
  weight %w = "w" : f32[4]
})") == "line 2, column 12: undefined value %w");
  }
  SECTION("a value defined twice") {
    CHECK(parse_error(R"(graph g {
  weight %w = "w" : f32[4]
  %w = exp(%w) : f32[4]
})") == "line 3, column 3: %w is already defined (line 2)");
  }
  SECTION("missing punctuation names the token found instead") {
    CHECK(parse_error(R"(graph g {
  weight %w = "w" = f32[4]
})") == "line 2, column 19: expected ':', found '='");
  }
  SECTION("unknown element type") {
    CHECK(parse_error("graph g {\n  weight %w = \"w\" : f64[4]\n}") ==
          "line 2, column 21: unknown element type 'f64'");
  }
  SECTION("negative dimension") {
    CHECK(parse_error("graph g {\n  weight %w = \"w\" : f32[4, -2]\n}") ==
          "line 2, column 28: a dimension must be T or non-negative, found -2");
  }
  SECTION("malformed number") {
    CHECK(parse_error("graph g {\n  %c = constant() {value = 1.2.3} : f32[]\n}") ==
          "line 2, column 28: malformed number '1.2.3'");
  }
  SECTION("unterminated string") {
    CHECK(parse_error("graph g {\n  weight %w = \"w : f32[4]\n}") == "line 2, column 15: unterminated string");
  }
  SECTION("fewer result types than results") {
    CHECK(parse_error(R"(graph g {
  state %s = "s" init 0 : f32[1, 4, 4]
  weight %x = "x" : f32[4]
  %xs = reshape(%x) {shape = [T, 4]} : f32[T, 4]
  %y, %s.next = wkv7(%xs, %xs, %xs, %xs, %xs, %xs, %s) : f32[T, 4]
})") == "line 5, column 17: wkv7 names 2 result(s) but gives 1 type(s)");
  }
  SECTION("state_out for a slot that was never declared") {
    CHECK(parse_error("graph g {\n  weight %w = \"w\" : f32[4]\n  state_out \"nope\" = %w\n}") ==
          "line 3, column 13: no state slot 'nope' is declared above");
  }
  SECTION("text after the closing brace") {
    CHECK(parse_error("graph g {\n}\nweight") == "line 3, column 1: expected end of input after '}', found 'weight'");
  }
  SECTION("end of input inside the graph") {
    CHECK_THAT(parse_error("graph g {\n  weight %w = \"w\" : f32[4]\n"),
               Catch::StartsWith("line 3, column 1: expected a declaration") && Catch::EndsWith("found end of input"));
  }
  SECTION("a type mismatch is reported by the verifier, at the op's line") {
    CHECK(parse_error(R"(graph g {
  weight %x = "x" : f32[4]
  weight %m = "m" : f32[3, 5]
  %y = matmul(%x, %m) {transpose_b = 1} : f32[3]
})") == "line 4: op #0 matmul (%y): inner dimensions differ: input [4] and matrix [3, 5] (transposed)");
  }
  SECTION("a declared result type that differs from the inferred one") {
    CHECK(parse_error(R"(graph g {
  weight %x = "x" : f32[4]
  %y = exp(%x) : f32[5]
})") == "line 3: op #0 exp (%y): result 0 %y has type f32[5], but the operands give f32[4]");
  }
}

}  // namespace rwkvc
