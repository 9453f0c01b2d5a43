// The RWKV-4 recurrence on the CPU backend against the equations of docs/equations.md.
#include <catch2/catch.hpp>

#include "cpu_test_support.h"

namespace rwkvc::test {

namespace {

constexpr std::int64_t kChannels = 4;
constexpr std::int64_t kRows = 5;  // tokens 0..4 select rows 0..4 of k and v

// wkv4(w, u, k, v, aa, bb, pp) -> y, with the three state slots fed back.
struct Wkv4Graph {
  OpGraph g{4};
  std::unique_ptr<Executable> exe;

  Wkv4Graph() {
    GraphBuilder& b = g.builder();
    ValueId w = g.weight("w", Shape{kChannels}, uniform_values(g.rng(), kChannels, -1.5f, -0.1f));
    ValueId u = g.random_weight("u", Shape{kChannels});
    ValueId k = g.random_sequence("k", kRows, kChannels);
    ValueId v = g.random_sequence("v", kRows, kChannels);
    TensorType row{DType::f32, Shape{kChannels}};
    ValueId aa = b.state("aa", row), bb = b.state("bb", row), pp = b.state("pp", row, -1e30);
    auto out = b.op(OpKind::wkv4, {w, u, k, v, aa, bb, pp});
    b.state_out("aa", out[1]);
    b.state_out("bb", out[2]);
    b.state_out("pp", out[3]);
    exe = g.compile(out[0]);
  }
};

// The equations, token by token, in double; updates aa, bb, pp and returns y [T, C].
std::vector<double> wkv4_reference(const OpGraph& g, std::int64_t seq_len, std::vector<double>& aa,
                                   std::vector<double>& bb, std::vector<double>& pp) {
  std::vector<double> w = g.values("w"), u = g.values("u"), k = g.values("k"), v = g.values("v"), y;
  for (std::int64_t t = 0; t < seq_len; ++t)
    for (std::size_t c = 0; c < kChannels; ++c) {
      double kt = k[static_cast<std::size_t>(t) * kChannels + c], vt = v[static_cast<std::size_t>(t) * kChannels + c];
      double q = std::max(pp[c], u[c] + kt);
      y.push_back((std::exp(pp[c] - q) * aa[c] + std::exp(u[c] + kt - q) * vt) /
                  (std::exp(pp[c] - q) * bb[c] + std::exp(u[c] + kt - q)));
      double q2 = std::max(pp[c] + w[c], kt);
      aa[c] = std::exp(pp[c] + w[c] - q2) * aa[c] + std::exp(kt - q2) * vt;
      bb[c] = std::exp(pp[c] + w[c] - q2) * bb[c] + std::exp(kt - q2);
      pp[c] = q2;
    }
  return y;
}

}  // namespace

TEST_CASE("wkv4 follows the RWKV-4 equations over several tokens", "[cpu][wkv4]") {
  Wkv4Graph graph;
  State state = graph.exe->new_state();
  HostTensor y = graph.exe->forward(first_tokens(kRows), state, {.all_logits = true});
  REQUIRE(y.shape() == Shape{kRows, kChannels});

  std::vector<double> aa(kChannels, 0.0), bb(kChannels, 0.0), pp(kChannels, -1e30);
  CHECK(relative_error(y, wkv4_reference(graph.g, kRows, aa, bb, pp)) <= kTolerance);
  HostState after = state.to_host();
  CHECK(relative_error(after.slots[0], aa) <= kTolerance);
  CHECK(relative_error(after.slots[1], bb) <= kTolerance);
  CHECK(relative_error(after.slots[2], pp) <= kTolerance);
}

TEST_CASE("wkv4 returns v for the first token of a fresh state", "[cpu][wkv4]") {
  // pp = -1e30 makes e^(pp - q) vanish and q = u + k, so y = (1 * v) / 1 exactly.
  Wkv4Graph graph;
  State state = graph.exe->new_state();
  HostTensor y = graph.exe->forward(first_tokens(1), state, {.all_logits = true});
  CHECK(relative_error(y, graph.g.values("v", kChannels)) == 0.0);
}

TEST_CASE("wkv4 over two forward calls equals one call over all the tokens", "[cpu][wkv4]") {
  Wkv4Graph graph;
  std::vector<std::int32_t> tokens = first_tokens(kRows);
  State whole = graph.exe->new_state();
  HostTensor y_whole = graph.exe->forward(tokens, whole, {.all_logits = true});

  State split = graph.exe->new_state();
  HostTensor y_first = graph.exe->forward(std::span(tokens).first(2), split, {.all_logits = true});
  HostTensor y_rest = graph.exe->forward(std::span(tokens).subspan(2), split, {.all_logits = true});

  // The same f32 operations in the same order: bit-identical.
  std::vector<float> joined(y_first.f32().begin(), y_first.f32().end());
  joined.insert(joined.end(), y_rest.f32().begin(), y_rest.f32().end());
  CHECK(joined == std::vector<float>(y_whole.f32().begin(), y_whole.f32().end()));
  CHECK(split.to_host() == whole.to_host());
}

}  // namespace rwkvc::test
