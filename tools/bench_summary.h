// Several `rwkvc bench` runs side by side (their --json records, e.g. one per model shape): one
// table of speeds and roofline fractions, fusion's gain per backend and Vulkan's speed as a
// fraction of CUDA's for every model, and one chart.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rwkvc::cli {

struct BenchRecord {
  std::string path;
  nlohmann::json run;  // format rwkvc-bench/1
};

// Reads and checks each file; throws std::invalid_argument naming the file and what is wrong.
std::vector<BenchRecord> read_bench_records(const std::vector<std::string>& paths);

std::string summary_table(const std::vector<BenchRecord>& records);
// `chart` is the SVG's path relative to the Markdown file (empty: no chart).
std::string summary_markdown(const std::vector<BenchRecord>& records, const std::string& chart);
std::string summary_svg(const std::vector<BenchRecord>& records);

}  // namespace rwkvc::cli
