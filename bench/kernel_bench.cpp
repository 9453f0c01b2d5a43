// One benchmark per kernel family and size, per backend: a tiny graph (kernel_graphs.h)
// compiled by the backend and run with forward(). Counters: bytes and flops per second of the
// kernel under test (shown as e.g. 12.3G/s and 1.2T/s), and calls per second.
#include <functional>
#include <memory>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "backends/backend.h"
#include "bench/bench_registry.h"
#include "bench/kernel_graphs.h"

namespace rwkvc::bench {

namespace {

void run_kernel(benchmark::State& bench, const std::string& backend, const std::function<KernelGraph()>& make) {
  KernelGraph kg = make();
  std::unique_ptr<Executable> exe = make_backend(backend)->compile(kg.graph, kg.weights);
  std::vector<std::int32_t> tokens(static_cast<std::size_t>(kg.tokens));
  for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<std::int32_t>((i * 37 + 11) % 64);
  State state = exe->new_state();
  ForwardOptions options;
  options.all_logits = kg.all_logits;
  exe->forward(tokens, state, options);  // warm-up: a backend may build its pipelines on the first call
  for (auto _ : bench) {
    HostTensor out = exe->forward(tokens, state, options);
    benchmark::DoNotOptimize(out.data());
  }
  const auto calls = static_cast<double>(bench.iterations());
  bench.counters["bytes"] = benchmark::Counter(kg.bytes * calls, benchmark::Counter::kIsRate);
  bench.counters["flops"] = benchmark::Counter(kg.flops * calls, benchmark::Counter::kIsRate);
  bench.counters["kernels"] = static_cast<double>(exe->stats().kernels_per_forward);
}

void add(const std::string& backend, const std::string& name, std::function<KernelGraph()> make) {
  benchmark::RegisterBenchmark(fmt::format("{}/{}", backend, name).c_str(),
                               [backend, make](benchmark::State& bench) { run_kernel(bench, backend, make); })
      ->Unit(benchmark::kMicrosecond)
      ->UseRealTime();
}

}  // namespace

void register_kernel_benchmarks(const std::string& backend) {
  for (DType dtype : {DType::f32, DType::f16, DType::bf16})
    for (std::int64_t n : {2048, 4096})
      add(backend, fmt::format("gemv/{}x{}/{}", n, n, dtype_name(dtype)), [=] { return gemv_graph(n, n, dtype); });
  for (DType dtype : {DType::f32, DType::f16})
    add(backend, fmt::format("gemm/T64/2048x2048/{}", dtype_name(dtype)), [=] { return gemm_graph(64, 2048, 2048, dtype); });
  for (std::int64_t t : {1, 64}) {
    add(backend, fmt::format("wkv7/T{}/H32xN64", t), [=] { return wkv7_graph(t, 32, 64); });
    add(backend, fmt::format("wkv4/T{}/C2048", t), [=] { return wkv4_graph(t, 2048); });
    add(backend, fmt::format("token_shift_mix/T{}/C2048", t), [=] { return token_shift_mix_graph(t, 2048); });
  }
}

}  // namespace rwkvc::bench
