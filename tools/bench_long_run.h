// `rwkvc bench --long-run N`: streams N tokens through one state, a token (or a small chunk)
// per call, and samples per-token latency and the process's memory every K tokens. An RNN's
// promise is that both stay flat however long the context grows; the chart shows whether they do.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/bench_machine.h"
#include "tools/bench_spec.h"

namespace rwkvc::cli {

struct LongRunOptions {
  std::int64_t tokens = 100000;
  std::int64_t every = 1000;  // a sample per this many tokens
  std::int64_t chunk = 1;     // tokens per forward call
};

// One sample: the calls of the last `every` tokens, per token, and memory at its end.
struct LongRunSample {
  std::int64_t tokens = 0;  // streamed so far
  double p50_us = 0, mean_us = 0, max_us = 0;
  std::int64_t rss_bytes = 0;
  std::int64_t device_bytes = 0;
};

struct LongRunSeries {
  std::string backend, pipeline, device, clock, skipped;
  double seconds = 0;
  std::vector<LongRunSample> samples;

  // The median latency of the last tenth of the samples over the first tenth's (1 = constant):
  // a tenth, not one sample, so a burst of other work on the machine does not decide it.
  double latency_drift() const;
  double early_latency_us() const;  // the median of the first tenth's medians
  double late_latency_us() const;   // the same of the last tenth
  // Resident memory at the last sample minus at the first.
  std::int64_t rss_growth_bytes() const;
};

struct LongRun {
  BenchSpec spec;
  LongRunOptions options;
  MachineInfo machine;
  std::string model;
  std::string model_label;  // short, for the chart's title
  double load_before = 0, load_after = 0;  // the machine's load average around the run
  std::vector<LongRunSeries> series;
};

// Throws std::invalid_argument for a token count, sample interval or chunk below 1.
LongRun run_long(const BenchSpec& spec, const LongRunOptions& options,
                 const std::function<void(const std::string&)>& progress);

std::string long_run_csv(const LongRun& run);
nlohmann::json long_run_json(const LongRun& run);
std::string long_run_svg(const LongRun& run);
std::string long_run_markdown(const LongRun& run, const std::string& chart, const std::string& csv);
std::string long_run_summary(const LongRun& run);  // for the terminal

}  // namespace rwkvc::cli
