// What `rwkvc bench` makes of its measurements: the terminal table, the JSON record, the
// Markdown report (command, machine, table, ratios, chart) and the SVG chart.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/bench_runner.h"

namespace rwkvc::cli {

// A speed compared with another: fusion's gain on one backend (-O2 over -O0), or one
// backend's speed as a fraction of CUDA's at the same pipeline.
struct SpeedRatio {
  std::string backend;
  std::string numerator;    // "-O2", or "vulkan -O2"
  std::string denominator;  // "-O0", or "cuda -O2"
  double decode = 0;
  double prefill = 0;
};

// Each level of a backend over the lowest level it ran.
std::vector<SpeedRatio> fusion_ratios(const BenchRun& run);
// Each GPU backend over CUDA at the same pipeline, when both ran.
std::vector<SpeedRatio> cuda_fractions(const BenchRun& run);

std::string terminal_table(const BenchRun& run);
nlohmann::json bench_json(const BenchRun& run);
std::string bench_chart_svg(const BenchRun& run);
// `chart` is the SVG's path relative to the Markdown file (empty: no chart).
std::string bench_markdown(const BenchRun& run, const std::string& chart);

}  // namespace rwkvc::cli
