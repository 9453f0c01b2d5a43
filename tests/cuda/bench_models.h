// Shared by the hidden speed cases of tests/cuda ([.bench], [.decode_bench], [.prefill_bench]):
// large random RWKV-7 models, fast to make at billions of parameters, and the median.
#pragma once

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "frontend/graph_builders.h"
#include "frontend/model_config.h"
#include "frontend/random.h"
#include "ir/graph.h"
#include "ir/tensor.h"
#include "passes/pass_manager.h"

namespace rwkvc::test {

// Uniform weights in the graph's declared shapes and dtypes (matrices f16 after the
// lower-precision pass): the values need only be non-zero and tame, matrices in
// +-1/sqrt(fan-in), the decay base w0 in (-6, -1), other vectors in (0.1, 0.9).
inline WeightMap bench_weights(const Graph& graph, std::uint64_t seed = 42) {
  WeightMap weights;
  Rng rng(seed);
  for (const WeightDecl& decl : graph.weights) {
    const TensorType& type = graph.type(decl.value);
    HostTensor tensor(type.dtype, type.shape);
    bool matrix = type.shape.rank() == 2, decay = decl.key.find("w0") != std::string::npos;
    double scale = matrix ? 1.0 / std::sqrt(static_cast<double>(type.shape[1])) : 1.0;
    std::byte* data = tensor.mutable_data();
    for (std::int64_t i = 0; i < tensor.numel(); ++i) {
      auto v = static_cast<float>(matrix ? rng.uniform(-scale, scale) : decay ? rng.uniform(-6.0, -1.0)
                                                                              : rng.uniform(0.1, 0.9));
      switch (type.dtype) {
        case DType::f32: reinterpret_cast<float*>(data)[i] = v; break;
        case DType::f16: reinterpret_cast<std::uint16_t*>(data)[i] = float_to_half(v); break;
        case DType::bf16: reinterpret_cast<std::uint16_t*>(data)[i] = float_to_bf16(v); break;
        case DType::i32: break;
      }
    }
    weights.emplace(decl.key, std::move(tensor));
  }
  return weights;
}

struct BenchModel {
  ModelConfig config;
  Graph graph;
  WeightMap weights;
};

// "L24xD2048": RWKV-7 with that many layers and channels, vocabulary 65536, LoRA ranks as the
// released models size them, lowered at -O2 to f16 weights.
inline BenchModel bench_model(const std::string& item) {
  std::int64_t layers = 0, embd = 0;
  REQUIRE(std::sscanf(item.c_str(), "L%ldxD%ld", &layers, &embd) == 2);
  BenchModel m;
  m.config = standard_config(Arch::rwkv7, layers, embd, 65536);
  m.graph = passes::run_pipeline(build_graph(m.config),
                                 passes::parse_pipeline(passes::preset_pipeline(2) + ",lower-precision=f16"));
  m.weights = bench_weights(m.graph);
  return m;
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace rwkvc::test
