// Shared by the CUDA tests that read or compile generated kernel text (no device needed):
// odd-shaped random models, a model's program source, counting a snippet, ptxas's report.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <catch2/catch.hpp>
#include <nvrtc.h>

#include "backends/cpu/precompute.h"
#include "backends/cuda/cuda_program.h"
#include "cuda_test_support.h"
#include "frontend/random_model.h"

namespace rwkvc::test {

// A random RWKV-7 of 3 heads of 32 whose LoRA ranks (the downs' N) are not multiples of 8, with
// an FFN `ffn` wide (the key's N, the value's K).
inline Model odd_lora_rwkv7(std::uint64_t seed, std::int64_t ffn) {
  Model model;
  model.config = standard_config(Arch::rwkv7, 2, 3 * 32, 41, 32);
  model.config.ffn = ffn;
  model.config.decay_lora = 20;
  model.config.aaa_lora = 12;
  model.config.mv_lora = 28;
  model.config.gate_lora = 40;
  model.path = "random RWKV-7 C96 FFN" + std::to_string(ffn) + " LoRA 20/12/28/40";
  model.weights = make_random_model(model.config, seed);
  return model;
}

// A random RWKV-4 of width 100 and FFN 212: no multiple of 8 in sight.
inline Model odd_width_rwkv4() {
  Model model;
  model.config = standard_config(Arch::rwkv4, 2, 100, 37);
  model.config.ffn = 212;
  model.path = "random RWKV-4 C100 FFN212";
  model.weights = make_random_model(model.config, 5);
  return model;
}

// The CUDA source of `model`'s program under `pipeline`, token-free values precomputed as a
// compiled model has them.
inline std::string decode_source(const Model& model, const std::string& pipeline) {
  Graph graph = passes::run_pipeline(build_graph(model.config), passes::parse_pipeline(pipeline));
  graph = precompute_token_free(graph, model.weights).graph;
  return cuda::build_program(graph).module.text();
}

inline std::size_t count_of(const std::string& text, const std::string& part) {
  std::size_t count = 0;
  for (std::size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++count;
  return count;
}

// NVRTC's log for `source` built for sm_90 with ptxas reporting each kernel's registers, spills
// and shared memory; `file_name` names the program in messages.
inline std::string ptxas_report(const std::string& source, const char* file_name) {
  nvrtcProgram program = nullptr;
  REQUIRE(nvrtcCreateProgram(&program, source.c_str(), file_name, 0, nullptr, nullptr) == NVRTC_SUCCESS);
  const char* options[] = {"--gpu-architecture=sm_90", "--std=c++17", "--device-as-default-execution-space",
                           "--ptxas-options=-v"};
  nvrtcResult result = nvrtcCompileProgram(program, 4, options);
  std::size_t size = 0;
  nvrtcGetProgramLogSize(program, &size);
  std::string log(size, '\0');
  nvrtcGetProgramLog(program, log.data());
  nvrtcDestroyProgram(&program);
  INFO(log);
  REQUIRE(result == NVRTC_SUCCESS);
  return log;
}

// Checks that every entry point of `log` (a ptxas_report) whose name starts with `prefix` spills
// nothing, and prints its registers as a warning; returns how many there were.
inline std::size_t check_entries_spill_nothing(const std::string& log, const std::string& prefix) {
  const std::string entry = "Compiling entry function '";
  std::size_t entries = 0;
  for (std::size_t at = log.find(entry + prefix); at != std::string::npos; at = log.find(entry + prefix, at + 1)) {
    ++entries;
    std::size_t end = log.find(entry, at + 1);
    std::string report = log.substr(at, end == std::string::npos ? std::string::npos : end - at);
    INFO(report);
    CHECK_THAT(report, Catch::Contains("0 bytes spill stores, 0 bytes spill loads"));
    std::size_t used = report.find("Used ");
    if (used != std::string::npos) WARN(report.substr(used, report.find('\n', used) - used));
  }
  return entries;
}

}  // namespace rwkvc::test
