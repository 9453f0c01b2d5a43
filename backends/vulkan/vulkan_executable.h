// The Vulkan executable: weights uploaded once to device-local buffers, the program's steps
// recorded into one command buffer per forward call (re-recorded only when T, the state or
// the logits wanted change), activations sized for the longest call so far, and the state
// left on the device.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/backend.h"
#include "backends/vulkan/buffer.h"
#include "backends/vulkan/pipeline_store.h"
#include "backends/vulkan/program.h"

namespace rwkvc::vulkan {

class VulkanStateStorage;

class VulkanExecutable final : public Executable {
 public:
  // `graph` must be verified. Throws std::invalid_argument naming a missing or misshapen weight,
  // IrError for an op without a kernel, std::runtime_error for a Vulkan failure.
  VulkanExecutable(std::shared_ptr<const Device> device, const Graph& graph, const WeightMap& weights);
  ~VulkanExecutable() override;

  const StateLayout& state_layout() const override { return *layout_; }
  State import_state(const HostState& host) const override;
  HostTensor forward(std::span<const std::int32_t> tokens, State& state, const ForwardOptions& options) override;
  ExecutionStats stats() const override { return stats_; }

  // For tests and tools: every pipeline's SPIR-V, and how many shaders this compile turned
  // from GLSL into SPIR-V (0 when the disk cache had them all).
  std::vector<const std::vector<std::uint32_t>*> spirv_modules() const;
  int shaders_compiled() const { return pipelines_->shaders_compiled(); }

  // Profiling for the speed probe: with it on, each later forward call (with time_on_device)
  // times every step; step_times() gives them in launch order, labelled by kernel and push
  // constants. Steps that overlap (no barrier between them) share their time unevenly. The
  // last entry, kCopiesLabel, is the tail after the last kernel: the transfers of the logits
  // and of any new state that no kernel copies (RWKVC_VULKAN_STATE_COPY=transfer: all of it).
  static constexpr std::string_view kCopiesLabel = "transfers after the last kernel";
  struct StepTime {
    std::string label;
    double seconds;
  };
  void set_profiling(bool on) { profiling_ = on; }
  // Barriers between the last forward call's dispatches (one only where a step depends on one
  // that has not finished).
  std::int64_t barriers_per_forward() const { return recorded_barriers_; }
  const std::vector<StepTime>& step_times() const { return step_times_; }

 private:
  struct RecordKey {
    std::int64_t tokens;
    bool last_logits_only;
    std::uint64_t state;
    std::uint64_t buffers;  // generation of the activation buffers
    bool profiling;
    bool operator==(const RecordKey&) const = default;
  };

  void upload_weights(const Graph& graph, const WeightMap& weights);
  void make_command_objects();
  void reserve(std::int64_t tokens);
  VkBuffer resolve(const BufferRef& ref, const VulkanStateStorage& state) const;
  void record(const CallShape& call, const VulkanStateStorage& state);
  std::size_t logits_offset(const CallShape& call) const;  // in floats
  std::size_t logits_count(const CallShape& call) const;

  std::shared_ptr<const Device> device_;
  std::unique_ptr<PipelineStore> pipelines_;
  Program program_;
  std::shared_ptr<const StateLayout> layout_;
  std::vector<Buffer> weights_;
  std::vector<Buffer> activations_;
  Buffer tokens_, logits_;
  std::int64_t capacity_tokens_ = 0;
  std::uint64_t generation_ = 0;

  VkDescriptorPool descriptor_pool_ = VK_NULL_HANDLE;
  VkCommandBuffer commands_ = VK_NULL_HANDLE;
  VkFence fence_ = VK_NULL_HANDLE;
  VkQueryPool timestamps_ = VK_NULL_HANDLE;
  std::optional<RecordKey> recorded_;
  ExecutionStats stats_;
  std::int64_t recorded_kernels_ = 0;  // dispatches in the recorded command buffer
  std::int64_t recorded_barriers_ = 0;  // barriers between them
  bool profiling_ = false;
  std::vector<std::string> step_labels_;  // of the recorded steps, when profiling
  std::vector<StepTime> step_times_;
};

}  // namespace rwkvc::vulkan
