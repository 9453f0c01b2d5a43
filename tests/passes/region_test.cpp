// Kernel regions in the IR: the textual form round-trips, equality compares bodies by content,
// and the verifier checks the body, naming the region and the body op at fault.
#include <catch2/catch.hpp>

#include "ir/error.h"
#include "ir/text.h"
#include "ir/verifier.h"

namespace rwkvc {

namespace {

const char* kRegionGraph = R"(graph g {
  input %tokens : i32[T]
  weight %emb = "emb" : f32[8, 4]
  %x = embedding(%emb, %tokens) : f32[T, 4]
  weight %s = "s" : f32[4]
  %a, %b = region "elementwise"(%x, %s) {
    ^(%0 : f32[T, 4], %1 : f32[4]):
    %2 = constant() {value = 0.5} : f32[]
    %3 = mul(%0, %1) : f32[T, 4]
    %4 = add(%3, %2) : f32[T, 4]
    yield %4, %3
  } : f32[T, 4], f32[T, 4]
  %y = add(%a, %b) : f32[T, 4]
  output logits = %y
}
)";

std::string with(std::string text, const std::string& from, const std::string& to) {
  text.replace(text.find(from), from.size(), to);
  return text;
}

}  // namespace

TEST_CASE("a region prints and parses back to an equal graph", "[passes][region]") {
  Graph graph = parse_graph(kRegionGraph);
  REQUIRE(graph.ops[1].region);
  CHECK(graph.ops[1].region->kind == "elementwise");
  CHECK(graph.ops[1].region->arguments == 2);
  CHECK(print_graph(graph) == kRegionGraph);
  CHECK(parse_graph(print_graph(graph)) == graph);
}

TEST_CASE("regions compare by body content, not by pointer", "[passes][region]") {
  Graph a = parse_graph(kRegionGraph), b = parse_graph(kRegionGraph);
  CHECK(a.ops[1].region != b.ops[1].region);
  CHECK(a == b);
  Graph c = parse_graph(with(kRegionGraph, "value = 0.5", "value = 0.25"));
  CHECK_FALSE(a == c);
}

TEST_CASE("the verifier checks a region's body and names the body op", "[passes][region]") {
  Graph graph = parse_graph(kRegionGraph);
  auto body = std::make_shared<Region>(*graph.ops[1].region);
  body->values[3] = TensorType{DType::f32, Shape{kSeq, 5}};
  graph.ops[1].region = body;
  CHECK_THAT(verify_error(graph), Catch::StartsWith("op #1 region \"elementwise\" (%a): body op #1 mul (%3): result 0 %3"));

  CHECK_THROWS_WITH(parse_graph(with(kRegionGraph, "yield %4, %3", "yield %4")),
                    Catch::Contains("region \"elementwise\" (%a): the body yields 1 value(s) for 2 result(s)"));
  CHECK_THROWS_WITH(parse_graph(with(kRegionGraph, "%3 = mul(%0, %1)", "%3 = mul(%0, %4)")),
                    Catch::Contains("undefined value %4 in the region body"));
  CHECK_THROWS_WITH(parse_graph(with(kRegionGraph, "^(%0 : f32[T, 4], %1 : f32[4])", "^(%0 : f32[T, 4], %1 : f32[2])")),
                    Catch::Contains("body argument %1 has type f32[2], but operand 1 is f32[4]"));
  CHECK_THROWS_WITH(parse_graph(with(kRegionGraph, "%2 = constant()", "%7 = constant()")),
                    Catch::Contains("expected %2, found %7"));
}

}  // namespace rwkvc
