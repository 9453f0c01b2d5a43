// The CUDA backend's executable: the program's steps over device memory. Weights are uploaded
// once; activations share buffers by liveness and grow with the longest call; the state stays
// on the device (the recurrences update it in place). A one-token call is captured as a CUDA
// graph on first use and replayed after, so decode pays one launch per token.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "backends/backend.h"
#include "backends/cuda/cuda_device.h"
#include "backends/cuda/cuda_program.h"
#include "backends/cuda/cuda_state.h"
#include "backends/cuda/nvrtc_module.h"
#include "backends/cuda/prefill_graphs.h"

namespace rwkvc::cuda {

class CudaExecutable final : public Executable {
 public:
  // `graph` must be verified. Throws std::invalid_argument naming a missing or misshapen weight,
  // IrError for an op no kernel covers, std::runtime_error for a CUDA failure.
  CudaExecutable(const DeviceInfo& device, const Graph& graph, const WeightMap& weights);
  ~CudaExecutable() override;

  const StateLayout& state_layout() const override { return *layout_; }
  State import_state(const HostState& host) const override;
  HostTensor forward(std::span<const std::int32_t> tokens, State& state, const ForwardOptions& options) override;
  ExecutionStats stats() const override { return stats_; }

 private:
  void upload_weights(const WeightMap& weights);
  void plan_buffers();
  void ensure_capacity(std::int64_t tokens);
  void check_state(const State& state) const;
  void bind_slots(CudaStateStorage& storage, RunContext& ctx) const;
  void run_steps(RunContext& ctx);
  void replay_decode_graph(RunContext& ctx, const void* state_key);
  void release_graph();
  void release_device_objects();  // stream, cuBLAS, events, pinned buffers, the decode graph

  DeviceInfo device_;
  Graph graph_;  // what precompute leaves
  std::shared_ptr<const StateLayout> layout_;
  Program program_;
  std::unique_ptr<Module> module_;

  std::vector<DeviceMemory> weights_;
  std::vector<void*> weight_at_;  // by ValueId
  std::int64_t weight_bytes_ = 0;

  // Activations: buffer by ValueId (-1: not an activation), the shapes each buffer holds.
  std::vector<int> buffer_of_;
  std::vector<std::vector<Shape>> buffer_shapes_;
  std::vector<DeviceMemory> buffers_, scratch_;
  DeviceMemory staging_, tokens_, cublas_workspace_;
  std::int64_t capacity_ = 0;    // the longest call the buffers hold
  std::int64_t generation_ = 0;  // bumped when buffers move

  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
  std::int32_t* host_tokens_ = nullptr;  // pinned
  float* host_logits_ = nullptr;         // pinned
  std::size_t host_logits_floats_ = 0;

  bool use_graphs_ = true;
  bool dependent_launch_ = false;  // programmatic dependent launch (sm_90+; RWKVC_CUDA_PDL=0: off)
  cudaGraphExec_t decode_graph_ = nullptr;
  const void* graph_state_ = nullptr;
  std::int64_t graph_generation_ = -1;
  std::int64_t graph_launches_ = 0;
  PrefillGraphs prefill_graphs_;  // calls of more than 8 tokens

  ExecutionStats stats_;
};

}  // namespace rwkvc::cuda
