// States on the CPU backend: fresh values, export and import, deep copies, and the checks
// that keep a state from running with the wrong model or backend.
#include <catch2/catch.hpp>

#include "cpu_test_support.h"

namespace rwkvc::test {

namespace {

// logits = token_shift(x, shift) with two slots: "shift" [C] (the last row of x) and "acc" [2, C]
// (init 0.5; the last row of x is added to each of its rows).
struct TwoSlotGraph {
  OpGraph g{21};
  std::unique_ptr<Executable> exe;

  explicit TwoSlotGraph(std::int64_t channels) {
    GraphBuilder& b = g.builder();
    ValueId x = g.random_sequence("x", 6, channels);
    ValueId shift = b.state("shift", TensorType{DType::f32, Shape{channels}});
    ValueId acc = b.state("acc", TensorType{DType::f32, Shape{2, channels}}, 0.5);
    ValueId last = b.op1(OpKind::last_row, {x});
    b.state_out("shift", last);
    b.state_out("acc", b.add(acc, last));
    exe = g.compile(b.op1(OpKind::token_shift, {x, shift}));
  }
};

// A storage claiming to belong to another backend.
class ForeignStorage final : public StateStorage {
 public:
  std::unique_ptr<StateStorage> clone() const override { return std::make_unique<ForeignStorage>(); }
  HostState to_host(const StateLayout& layout) const override { return HostState::fresh(layout); }
  std::string_view backend() const override { return "elsewhere"; }
};

}  // namespace

TEST_CASE("a new state holds each slot's init value", "[cpu][state]") {
  TwoSlotGraph graph(3);
  HostState host = graph.exe->new_state().to_host();
  REQUIRE(host.layout.slots.size() == 2);
  CHECK(host.layout.slots[0].name == "shift");
  CHECK(host.layout.slots[1].shape == Shape{2, 3});
  CHECK(host.slots[0] == std::vector<float>(3, 0.0f));
  CHECK(host.slots[1] == std::vector<float>(6, 0.5f));
}

TEST_CASE("a state exported after import is the state imported", "[cpu][state]") {
  TwoSlotGraph graph(3);
  std::mt19937 rng(2);
  HostState host{graph.exe->state_layout(), {random_values(rng, 3), random_values(rng, 6)}};
  State state = graph.exe->import_state(host);
  CHECK(state.backend() == "cpu");
  CHECK(state.to_host() == host);

  // forward reads the imported values: row 0 of the token shift is the imported "shift".
  HostTensor shifted = graph.exe->forward(first_tokens(2), state, {.all_logits = true});
  CHECK(std::vector<float>(shifted.f32().begin(), shifted.f32().begin() + 3) == host.slots[0]);
}

TEST_CASE("forward writes each state output back into its slot", "[cpu][state]") {
  TwoSlotGraph graph(3);
  State state = graph.exe->new_state();
  graph.exe->forward(first_tokens(4), state);
  HostState host = state.to_host();
  std::vector<double> last_row = graph.g.values("x");
  last_row = std::vector<double>(last_row.begin() + 9, last_row.begin() + 12);
  CHECK(relative_error(host.slots[0], last_row) == 0.0);
  std::vector<double> acc;
  for (int row = 0; row < 2; ++row)
    for (double v : last_row) acc.push_back(0.5 + v);
  CHECK(relative_error(host.slots[1], acc) <= kTolerance);
}

TEST_CASE("copying a state copies its contents", "[cpu][state]") {
  TwoSlotGraph graph(3);
  State original = graph.exe->new_state();
  graph.exe->forward(first_tokens(2), original);
  HostState before = original.to_host();

  SECTION("copy construction") {
    State copy = original;
    graph.exe->forward(first_tokens(4), copy);
    CHECK(copy.to_host() != before);
    CHECK(original.to_host() == before);
  }
  SECTION("copy assignment") {
    State copy = graph.exe->new_state();
    copy = original;
    CHECK(copy.to_host() == before);
    graph.exe->forward(first_tokens(4), copy);
    CHECK(copy.to_host() != before);
    CHECK(original.to_host() == before);
  }
}

TEST_CASE("import_state rejects a state of another layout, naming the slot", "[cpu][state]") {
  TwoSlotGraph graph(3);
  HostState wrong = TwoSlotGraph(4).exe->new_state().to_host();
  CHECK_THROWS_AS(graph.exe->import_state(wrong), std::invalid_argument);
  CHECK_THROWS_WITH(graph.exe->import_state(wrong), Catch::Contains("'shift'"));
}

TEST_CASE("forward rejects a state made for another model, naming the slot", "[cpu][state]") {
  TwoSlotGraph graph(3);
  State wrong = TwoSlotGraph(4).exe->new_state();
  CHECK_THROWS_AS(graph.exe->forward(first_tokens(1), wrong), std::invalid_argument);
  CHECK_THROWS_WITH(graph.exe->forward(first_tokens(1), wrong), Catch::Contains("'shift'"));
}

TEST_CASE("forward rejects a state held by another backend", "[cpu][state]") {
  TwoSlotGraph graph(3);
  State foreign(std::make_shared<StateLayout>(graph.exe->state_layout()), std::make_unique<ForeignStorage>());
  CHECK_THROWS_AS(graph.exe->forward(first_tokens(1), foreign), std::invalid_argument);
  CHECK_THROWS_WITH(graph.exe->forward(first_tokens(1), foreign), Catch::Contains("elsewhere"));
}

TEST_CASE("a forward call that throws leaves the state as it was", "[cpu][state]") {
  TwoSlotGraph graph(3);
  State state = graph.exe->new_state();
  graph.exe->forward(first_tokens(2), state);
  HostState before = state.to_host();
  std::vector<std::int32_t> tokens = {1, 2, 99};
  CHECK_THROWS_AS(graph.exe->forward(tokens, state), std::invalid_argument);
  CHECK(state.to_host() == before);
}

}  // namespace rwkvc::test
