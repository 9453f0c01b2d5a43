// The RWKV-7 recurrence on the CPU backend against the equations of docs/equations.md.
#include <catch2/catch.hpp>

#include "cpu_test_support.h"

namespace rwkvc::test {

namespace {

// wkv7(r, w, k, v, a, b, S) -> y, with S fed back through the state slot "wkv".
struct Wkv7Graph {
  std::int64_t heads, head_size, channels;
  OpGraph g{7};
  std::unique_ptr<Executable> exe;

  // Each sequence input is a [rows, channels] table filled by `fill(name, count)`.
  template <typename Fill>
  Wkv7Graph(std::int64_t heads, std::int64_t head_size, std::int64_t rows, Fill fill)
      : heads(heads), head_size(head_size), channels(heads * head_size) {
    std::vector<ValueId> operands;
    for (const char* name : {"r", "w", "k", "v", "a", "b"})
      operands.push_back(g.sequence(name, rows, channels, fill(name, static_cast<std::size_t>(rows * channels))));
    operands.push_back(g.builder().state("wkv", TensorType{DType::f32, Shape{heads, head_size, head_size}}));
    auto out = g.builder().op(OpKind::wkv7, operands);
    g.builder().state_out("wkv", out[1]);
    exe = g.compile(out[0]);
  }

  State state_holding(std::vector<float> values) const {
    return exe->import_state(HostState{exe->state_layout(), {std::move(values)}});
  }
};

// Random inputs that keep the recurrence tame: decays in (0, 1), small a and b.
Wkv7Graph random_wkv7(std::int64_t heads, std::int64_t head_size, std::int64_t rows) {
  std::mt19937 rng(11);
  return Wkv7Graph(heads, head_size, rows, [&](std::string_view name, std::size_t count) {
    if (name == "w") return uniform_values(rng, count, 0.3f, 0.95f);
    if (name == "a" || name == "b") return random_values(rng, count, 0.05f, 0.3f);
    return random_values(rng, count);
  });
}

// The equations per token and head, as matrices in double: S' = S diag(w) + (S a) b^T + v k^T,
// then y = S' r. Updates S ([H, N, N], rows index v) and returns y [T, C].
std::vector<double> wkv7_reference(const Wkv7Graph& graph, std::int64_t seq_len, std::vector<double>& state) {
  auto N = static_cast<std::size_t>(graph.head_size);
  auto C = static_cast<std::size_t>(graph.channels);
  std::map<std::string, std::vector<double>> inputs;
  for (const char* name : {"r", "w", "k", "v", "a", "b"}) inputs[name] = graph.g.values(name);
  auto in = [&](const char* name, std::size_t t, std::size_t h, std::size_t j) { return inputs[name][t * C + h * N + j]; };
  std::vector<double> y;
  for (std::size_t t = 0; t < static_cast<std::size_t>(seq_len); ++t)
    for (std::size_t h = 0; h < static_cast<std::size_t>(graph.heads); ++h) {
      auto S = [&](std::size_t i, std::size_t j) -> double& { return state[h * N * N + i * N + j]; };
      std::vector<double> sa(N, 0.0);
      for (std::size_t i = 0; i < N; ++i)
        for (std::size_t j = 0; j < N; ++j) sa[i] += S(i, j) * in("a", t, h, j);
      for (std::size_t i = 0; i < N; ++i)
        for (std::size_t j = 0; j < N; ++j)
          S(i, j) = S(i, j) * in("w", t, h, j) + sa[i] * in("b", t, h, j) + in("v", t, h, i) * in("k", t, h, j);
      for (std::size_t i = 0; i < N; ++i) {
        double out = 0;
        for (std::size_t j = 0; j < N; ++j) out += S(i, j) * in("r", t, h, j);
        y.push_back(out);
      }
    }
  return y;
}

}  // namespace

TEST_CASE("wkv7 follows the RWKV-7 equations over several tokens", "[cpu][wkv7]") {
  constexpr std::int64_t T = 5;
  Wkv7Graph graph = random_wkv7(2, 4, T);
  std::mt19937 rng(3);
  std::vector<float> initial = random_values(rng, 2 * 4 * 4);
  State state = graph.state_holding(initial);
  HostTensor y = graph.exe->forward(first_tokens(T), state, {.all_logits = true});
  REQUIRE(y.shape() == Shape{T, 8});

  std::vector<double> expected_state(initial.begin(), initial.end());
  CHECK(relative_error(y, wkv7_reference(graph, T, expected_state)) <= kTolerance);
  CHECK(relative_error(state.to_host().slots[0], expected_state) <= kTolerance);
}

TEST_CASE("wkv7 over two forward calls equals one call over all the tokens", "[cpu][wkv7]") {
  constexpr std::int64_t T = 5;
  Wkv7Graph graph = random_wkv7(2, 4, T);
  std::mt19937 rng(5);
  std::vector<float> initial = random_values(rng, 2 * 4 * 4);
  std::vector<std::int32_t> tokens = first_tokens(T);

  State whole = graph.state_holding(initial);
  HostTensor y_whole = graph.exe->forward(tokens, whole, {.all_logits = true});
  State split = graph.state_holding(initial);
  HostTensor y_first = graph.exe->forward(std::span(tokens).first(3), split, {.all_logits = true});
  HostTensor y_rest = graph.exe->forward(std::span(tokens).subspan(3), split, {.all_logits = true});

  // The same f32 operations in the same order: bit-identical.
  std::vector<float> joined(y_first.f32().begin(), y_first.f32().end());
  joined.insert(joined.end(), y_rest.f32().begin(), y_rest.f32().end());
  CHECK(joined == std::vector<float>(y_whole.f32().begin(), y_whole.f32().end()));
  CHECK(split.to_host() == whole.to_host());
}

TEST_CASE("wkv7 takes one step of a 2x2 head as worked by hand", "[cpu][wkv7]") {
  // S = [[1, 2], [3, 4]], w = (0.5, 0.25), a = (1, -1), b = (0.5, 1), k = (1, 2), v = (2, -1), r = (1, 2).
  // sa = S a = (1 - 2, 3 - 4) = (-1, -1).
  // S'_ij = S_ij w_j + sa_i b_j + v_i k_j:
  //   S'_00 = 0.5 - 0.5 + 2 = 2      S'_01 = 0.5 - 1 + 4 = 3.5
  //   S'_10 = 1.5 - 0.5 - 1 = 0      S'_11 = 1 - 1 - 2 = -2
  // y = S' r = (2 + 7, 0 - 4) = (9, -4).
  std::map<std::string_view, std::vector<float>> inputs = {
      {"r", {1, 2}}, {"w", {0.5f, 0.25f}}, {"k", {1, 2}}, {"v", {2, -1}}, {"a", {1, -1}}, {"b", {0.5f, 1}}};
  Wkv7Graph graph(1, 2, 1, [&](std::string_view name, std::size_t) { return inputs.at(name); });
  State state = graph.state_holding({1, 2, 3, 4});
  HostTensor y = graph.exe->forward(first_tokens(1), state, {.all_logits = true});
  CHECK(std::vector<float>(y.f32().begin(), y.f32().end()) == std::vector<float>{9, -4});
  CHECK(state.to_host().slots[0] == std::vector<float>{2, 3.5f, 0, -2});
}

}  // namespace rwkvc::test
