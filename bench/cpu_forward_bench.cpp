// Decode and prefill throughput of the CPU reference backend on RWKV-7 shapes. Counters give
// tokens/s and the weight bandwidth decode achieves (every weight is read once per token).
#include <benchmark/benchmark.h>

#include "backends/backend.h"
#include "frontend/graph_builders.h"
#include "frontend/random_model.h"

namespace rwkvc {

namespace {

struct BenchModel {
  std::unique_ptr<Executable> exe;
  double weight_bytes = 0;
};

BenchModel make_bench_model(std::int64_t layers, std::int64_t embd) {
  ModelConfig config;
  config.arch = Arch::rwkv7;
  config.layers = layers;
  config.embd = embd;
  config.vocab = 65536;
  config.ffn = 4 * embd;
  config.head_size = 64;
  config.decay_lora = config.aaa_lora = config.mv_lora = 32;
  config.gate_lora = 64;
  WeightMap weights = make_random_model(config, 1);
  BenchModel m{make_backend("cpu")->compile(build_graph(config), weights), 0};
  for (const auto& [name, tensor] : weights)
    if (name != "emb.weight") m.weight_bytes += static_cast<double>(tensor.numel()) * 4;  // one embedding row only
  return m;
}

void BM_cpu_decode(benchmark::State& bench, std::int64_t layers, std::int64_t embd) {
  BenchModel m = make_bench_model(layers, embd);
  State state = m.exe->new_state();
  std::int32_t token = 1;
  for (auto _ : bench) {
    HostTensor logits = m.exe->forward(std::span(&token, 1), state);
    benchmark::DoNotOptimize(logits.data());
  }
  bench.counters["tokens/s"] = benchmark::Counter(static_cast<double>(bench.iterations()), benchmark::Counter::kIsRate);
  bench.counters["weight_GB/s"] =
      benchmark::Counter(m.weight_bytes * static_cast<double>(bench.iterations()) / 1e9, benchmark::Counter::kIsRate);
}

void BM_cpu_prefill(benchmark::State& bench, std::int64_t layers, std::int64_t embd) {
  BenchModel m = make_bench_model(layers, embd);
  std::vector<std::int32_t> prompt(static_cast<std::size_t>(bench.range(0)));
  for (std::size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<std::int32_t>(i * 7919 % 65536);
  for (auto _ : bench) {
    State state = m.exe->new_state();
    HostTensor logits = m.exe->forward(prompt, state);
    benchmark::DoNotOptimize(logits.data());
  }
  bench.counters["tokens/s"] = benchmark::Counter(static_cast<double>(bench.iterations() * bench.range(0)),
                                                  benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK_CAPTURE(BM_cpu_decode, rwkv7_L2_D256, 2, 256)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_cpu_decode, rwkv7_L12_D768, 12, 768)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_cpu_prefill, rwkv7_L2_D256, 2, 256)->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace rwkvc

BENCHMARK_MAIN();
