// Whole-model decode and prefill on random RWKV-7 models (the graph as built, no passes: the
// bench target links no pass library; `rwkvc bench` compares pipelines). Counters: tokens/s and
// the bandwidth decode achieves reading every weight once per token.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "backends/backend.h"
#include "bench/bench_registry.h"
#include "frontend/graph_builders.h"
#include "frontend/random_model.h"

namespace rwkvc::bench {

namespace {

struct ForwardModel {
  std::unique_ptr<Executable> exe;
  double decode_bytes = 0;  // every weight once, one embedding row
};

ForwardModel make_forward_model(const std::string& backend, std::int64_t layers, std::int64_t embd) {
  ModelConfig config = standard_config(Arch::rwkv7, layers, embd, 65536);
  WeightMap weights = make_random_model(config, 1);
  ForwardModel m{make_backend(backend)->compile(build_graph(config), weights), 0};
  for (const auto& [name, tensor] : weights)
    m.decode_bytes += static_cast<double>(name == "emb.weight" ? embd * 4 : static_cast<std::int64_t>(tensor.nbytes()));
  return m;
}

void decode(benchmark::State& bench, const std::string& backend, std::int64_t layers, std::int64_t embd) {
  ForwardModel m = make_forward_model(backend, layers, embd);
  State state = m.exe->new_state();
  std::int32_t token = 1;
  m.exe->forward(std::span(&token, 1), state);  // warm-up: a backend may build its pipelines on the first call
  for (auto _ : bench) {
    HostTensor logits = m.exe->forward(std::span(&token, 1), state);
    benchmark::DoNotOptimize(logits.data());
  }
  const auto calls = static_cast<double>(bench.iterations());
  bench.counters["tokens"] = benchmark::Counter(calls, benchmark::Counter::kIsRate);
  bench.counters["bytes"] = benchmark::Counter(m.decode_bytes * calls, benchmark::Counter::kIsRate);
}

void prefill(benchmark::State& bench, const std::string& backend, std::int64_t layers, std::int64_t embd, std::int64_t t) {
  ForwardModel m = make_forward_model(backend, layers, embd);
  std::vector<std::int32_t> prompt(static_cast<std::size_t>(t));
  for (std::size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<std::int32_t>(i * 7919 % 65536);
  State warm = m.exe->new_state();
  m.exe->forward(prompt, warm);  // warm-up
  for (auto _ : bench) {
    State state = m.exe->new_state();
    HostTensor logits = m.exe->forward(prompt, state);
    benchmark::DoNotOptimize(logits.data());
  }
  bench.counters["tokens"] = benchmark::Counter(static_cast<double>(bench.iterations() * t), benchmark::Counter::kIsRate);
}

}  // namespace

void register_forward_benchmarks(const std::string& backend) {
  for (auto [layers, embd] : {std::pair<std::int64_t, std::int64_t>{2, 256}, {12, 768}})
    benchmark::RegisterBenchmark(fmt::format("{}/decode/rwkv7_L{}_D{}", backend, layers, embd).c_str(),
                                 [=](benchmark::State& s) { decode(s, backend, layers, embd); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  benchmark::RegisterBenchmark(fmt::format("{}/prefill/rwkv7_L2_D256/T64", backend).c_str(),
                               [=](benchmark::State& s) { prefill(s, backend, 2, 256, 64); })
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}

}  // namespace rwkvc::bench
