// rwkvc_bench: Google Benchmark micro-benchmarks of every backend of this build. Benchmark
// names start with the backend ("cpu/gemv/4096x4096/f32"); --benchmark_filter=cuda/ picks one.
#include <cstdio>
#include <stdexcept>

#include <benchmark/benchmark.h>

#include "backends/backend.h"
#include "bench/bench_registry.h"

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  for (const std::string& backend : rwkvc::backend_names()) {
    try {
      rwkvc::make_backend(backend);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "rwkvc_bench: skipping %s: %s\n", backend.c_str(), e.what());
      continue;
    }
    rwkvc::bench::register_kernel_benchmarks(backend);
    rwkvc::bench::register_forward_benchmarks(backend);
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
