// What `rwkvc bench` is asked to measure, parsed from its flags: the model (a file or a shape
// of random weights), the backends, the pipelines (one per -O level, or --passes) and the
// workload. Every parser throws std::invalid_argument naming the flag and the item at fault.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "frontend/model_config.h"
#include "tools/pipeline_options.h"

namespace rwkvc::cli {

// "rwkv7:L24:D2048:V65536" (RWKV-7 also takes N<head size>, default 64): the sizes of a
// released-style model (standard_config) that bench fills with random weights.
ModelConfig parse_shape(const std::string& text);

// "cpu,vulkan": known to this build (backend_names()), each once.
std::vector<std::string> parse_backends(const std::string& text);

// -O values as CLI11 hands them over ("0", "-O2" from `-O0,-O2`; "0,2" from --levels), each a
// known level, kept in the order given, each once.
std::vector<int> parse_levels(const std::vector<std::string>& items);

// A figure per backend: "900" for every backend, or "cpu=20,cuda=3350".
struct PerBackend {
  std::optional<double> all;
  std::map<std::string, double, std::less<>> by_backend;
  std::optional<double> get(const std::string& backend) const;
};
PerBackend parse_per_backend(const std::string& flag, const std::string& text);
// The same for device indices: "1", or "cuda=1,vulkan=0"; whole numbers from 0.
PerBackend parse_device_indices(const std::string& text);

// One pipeline to compile every backend with: a level, or --passes text, plus the shared flags.
struct BenchPipeline {
  std::string label;  // "-O2", or "--passes=..." when the pipeline is given by name
  int level = -1;     // -1 for --passes
  PipelineOptions options;
};

struct BenchSpec {
  std::string model_path;  // empty when `shape` is given
  std::string shape_text;
  std::optional<ModelConfig> shape;
  std::uint64_t seed = 0;  // of the random weights of a shape

  std::vector<std::string> backends;
  PerBackend device;  // device indices: one for every backend, or per backend (cuda=1)
  std::vector<BenchPipeline> pipelines;

  std::int64_t prompt = 512;  // prefill: one forward over this many tokens
  std::int64_t gen = 128;     // decode: this many single-token forwards
  int repeat = 3;
  int warmup = 1;

  PerBackend bandwidth_gbs;
  PerBackend peak_tflops;

  std::string command_line;  // as typed, for the reports

  int device_for(const std::string& backend) const { return static_cast<int>(device.get(backend).value_or(0)); }
};

// The pipelines: one per level of `levels`, or the single --passes pipeline. Throws when both
// are given, since --passes replaces a level.
std::vector<BenchPipeline> bench_pipelines(const PipelineOptions& shared, const std::vector<int>& levels);

// This process's command line as typed (from /proc/self/cmdline), each argument quoted for a
// POSIX shell where it needs to be, so a report says exactly how to run it again.
std::string this_command_line();

}  // namespace rwkvc::cli
