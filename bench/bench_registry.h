// The micro-benchmarks register themselves per backend at start-up (bench_main.cpp loops over
// backend_names() and skips a backend without a device), so one binary measures every backend
// of the build with the same code.
#pragma once

#include <string>

namespace rwkvc::bench {

// Kernel families (GEMV, GEMM, WKV4, WKV7, token shift + mix) through tiny graphs: kernel_bench.cpp.
void register_kernel_benchmarks(const std::string& backend);
// Whole-model decode and prefill on random RWKV-7 models: forward_bench.cpp.
void register_forward_benchmarks(const std::string& backend);

}  // namespace rwkvc::bench
