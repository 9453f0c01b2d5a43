// Shared by the end-to-end tests: the committed tiny models, random token sequences, and the
// error measure every comparison uses.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "frontend/graph_builders.h"
#include "frontend/model.h"

namespace rwkvc::test {

inline std::string fixture_path(const std::string& name) { return std::string(RWKVC_SOURCE_DIR) + "/tests/models/" + name; }

inline std::vector<std::int32_t> random_tokens(std::size_t count, std::int64_t vocab, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<std::int32_t> pick(0, static_cast<std::int32_t>(vocab - 1));
  std::vector<std::int32_t> tokens(count);
  for (auto& t : tokens) t = pick(rng);
  return tokens;
}

// max |a - b| over max |b|: the error relative to the reference's scale. Elementwise relative
// error is meaningless for logits near zero; this is what "1e-5 relative" means in the tests.
struct Error {
  double max_abs = 0;
  double relative = 0;
};

template <typename A, typename B>
Error compare(std::span<const A> actual, std::span<const B> reference) {
  Error e;
  double scale = 0;
  for (std::size_t i = 0; i < reference.size(); ++i) {
    double diff = std::abs(static_cast<double>(actual[i]) - static_cast<double>(reference[i]));
    e.max_abs = std::isnan(diff) ? INFINITY : std::max(e.max_abs, diff);
    scale = std::max(scale, std::abs(static_cast<double>(reference[i])));
  }
  e.relative = scale > 0 ? e.max_abs / scale : e.max_abs;
  return e;
}

struct CompiledModel {
  Model model;
  std::unique_ptr<Executable> exe;
};

inline CompiledModel compile_on_cpu(Model model) {
  auto exe = make_backend("cpu")->compile(build_graph(model.config), model.weights);
  return {std::move(model), std::move(exe)};
}

}  // namespace rwkvc::test
