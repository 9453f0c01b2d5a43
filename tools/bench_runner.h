// The measurement of `rwkvc bench`: for each backend and pipeline, compile the model and time
// prefill (one forward over the prompt) and decode (single-token forwards), through the public
// execution interface only, so every backend is measured the same way.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "frontend/model.h"
#include "tools/bench_machine.h"
#include "tools/bench_spec.h"
#include "tools/bench_workload.h"

namespace rwkvc::cli {

// A measured call: host wall-clock always; the device's own time when the backend reports it.
struct Timing {
  double host_seconds = 0;
  double device_seconds = -1;  // < 0: not reported
};

// Where a roofline's denominator came from: a flag, or a measurement on this machine.
struct Ceiling {
  double value = 0;    // GB/s or TFLOP/s
  std::string source;  // "--bandwidth-gbs", or how it was measured
};

struct ComboResult {
  std::string backend;
  std::string device;  // the backend's device_name(), or empty when it has none
  std::string pipeline;
  int level = -1;
  std::string skipped;  // why this combination did not run (no device); empty when it ran

  std::string clock;  // "device" when every measured call had device time, else "host"
  double pipeline_seconds = 0;  // the passes
  double compile_seconds = 0;   // make_backend and compile: binding and uploading the weights

  std::vector<Timing> prefill;  // one per measured round
  std::vector<Timing> decode;   // every measured single-token call
  double prefill_tokens_per_s = 0;  // prompt / median prefill time, on `clock`
  double decode_tokens_per_s = 0;   // median over rounds of gen / the round's decode time
  double host_prefill_tokens_per_s = 0;
  double host_decode_tokens_per_s = 0;
  double decode_p50_ms = 0;
  double decode_p99_ms = 0;

  std::int64_t kernels_per_token = 0;    // of a decode call
  std::int64_t kernels_per_prefill = 0;  // of a prefill call
  std::string kernels_source;            // "backend stats", or "graph" when the backend reports none
  std::int64_t device_bytes = 0;         // the most stats().device_bytes reported
  std::int64_t weight_bytes = 0;         // as the backend holds them
  std::int64_t state_bytes = 0;
  std::int64_t peak_rss_bytes = 0;  // this process, from compile to the last call
  bool rss_peak_is_per_combination = true;

  Workload work;
  std::optional<Ceiling> bandwidth;  // GB/s
  std::optional<Ceiling> peak;       // TFLOP/s
  std::optional<double> decode_roofline;   // achieved weight-read bandwidth / bandwidth
  std::optional<double> prefill_roofline;  // achieved matmul flops / peak
};

struct BenchRun {
  BenchSpec spec;
  MachineInfo machine;
  std::string model;  // describe(model)
  std::string model_label;  // short, for titles: "rwkv7-tiny.safetensors (rwkv7:L2:D64:V256)"
  ModelConfig config;
  std::string model_source;  // "file" or "random (--shape ..., seed N)"
  double model_load_seconds = 0;
  double load_before = 0, load_after = 0;  // the machine's load average around the run
  std::vector<ComboResult> results;
};

// "rwkv7:L12:D768:V65536", or the file's name with its shape: for titles.
std::string model_label(const BenchSpec& spec, const ModelConfig& config);

// The model a spec names: the file, or random weights of the shape.
Model load_bench_model(const BenchSpec& spec);

// `progress` receives a line per step ("cpu -O2: compiling") for the terminal.
BenchRun run_bench(const BenchSpec& spec, const std::function<void(const std::string&)>& progress);

// The q-quantile (0..1) of `values`, interpolating between neighbours; 0 when empty.
double quantile(std::vector<double> values, double q);

// Deterministic token ids in [0, vocab): the same workload on every backend and run.
std::vector<std::int32_t> bench_tokens(std::size_t count, std::int64_t vocab, std::uint64_t seed);

}  // namespace rwkvc::cli
