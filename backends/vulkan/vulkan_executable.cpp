#include "backends/vulkan/vulkan_executable.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "backends/cpu/precompute.h"
#include "backends/vulkan/disk_cache.h"
#include "backends/vulkan/vk_error.h"
#include "backends/vulkan/vulkan_state.h"

namespace rwkvc::vulkan {

namespace {

// The buffers read and written since the last barrier.
class HazardTracker {
 public:
  bool conflicts(const std::vector<VkBuffer>& reads, const std::vector<VkBuffer>& writes) const {
    auto written = [&](VkBuffer b) { return std::find(written_.begin(), written_.end(), b) != written_.end(); };
    auto read = [&](VkBuffer b) { return std::find(read_.begin(), read_.end(), b) != read_.end(); };
    return std::any_of(reads.begin(), reads.end(), written) ||
           std::any_of(writes.begin(), writes.end(), [&](VkBuffer b) { return written(b) || read(b); });
  }
  void add(const std::vector<VkBuffer>& reads, const std::vector<VkBuffer>& writes) {
    read_.insert(read_.end(), reads.begin(), reads.end());
    written_.insert(written_.end(), writes.begin(), writes.end());
  }
  void clear() {
    read_.clear();
    written_.clear();
  }

 private:
  std::vector<VkBuffer> read_, written_;
};

// Between two dispatches: only the compute stage waits, for shader writes (the transfers
// before and after the steps keep full barriers).
void compute_barrier(VkCommandBuffer commands) {
  VkMemoryBarrier barrier{};
  barrier.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER;
  barrier.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
  barrier.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT;
  vkCmdPipelineBarrier(commands, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &barrier,
                       0, nullptr, 0, nullptr);
}

}  // namespace

VulkanExecutable::VulkanExecutable(std::shared_ptr<const Device> device, const Graph& graph, const WeightMap& weights)
    : device_(std::move(device)) {
  Precomputed precomputed = precompute_token_free(graph, weights);
  const Graph& remaining = precomputed.graph;
  layout_ = std::make_shared<StateLayout>(rwkvc::state_layout(remaining));
  for (const Op& op : remaining.ops)
    if (op.kind == OpKind::embedding) {
      Dim rows = remaining.type(op.operands[0]).shape[0];
      vocab_size_ = vocab_size_ == 0 ? rows : std::min(vocab_size_, rows);
    }
  pipelines_ = std::make_unique<PipelineStore>(device_, cache_directory());
  program_ = plan_program(remaining, *pipelines_, device_->features());
  pipelines_->build();
  pipelines_->save_cache();
  upload_weights(remaining, precomputed.weights);
  make_command_objects();
  stats_.state_bytes = static_cast<std::int64_t>(4 * layout_->total_floats());
  stats_.kernels_per_forward = static_cast<std::int64_t>(program_.steps.size());
}

VulkanExecutable::~VulkanExecutable() {
  VkDevice device = device_->handle();
  vkDeviceWaitIdle(device);
  if (timestamps_ != VK_NULL_HANDLE) vkDestroyQueryPool(device, timestamps_, nullptr);
  if (fence_ != VK_NULL_HANDLE) vkDestroyFence(device, fence_, nullptr);
  if (commands_ != VK_NULL_HANDLE) vkFreeCommandBuffers(device, device_->command_pool(), 1, &commands_);
  if (descriptor_pool_ != VK_NULL_HANDLE) vkDestroyDescriptorPool(device, descriptor_pool_, nullptr);
}

namespace {

// `matrix` [K, N] as [N, K] (any element size).
HostTensor transposed(const HostTensor& matrix) {
  std::int64_t rows = matrix.shape()[0], columns = matrix.shape()[1];
  std::size_t element = dtype_size(matrix.dtype());
  HostTensor out(matrix.dtype(), Shape{columns, rows});
  const std::byte* from = matrix.data();
  std::byte* to = out.mutable_data();
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < columns; ++c)
      std::memcpy(to + static_cast<std::size_t>(c * rows + r) * element,
                  from + static_cast<std::size_t>(r * columns + c) * element, element);
  return out;
}

}  // namespace

void VulkanExecutable::upload_weights(const Graph& graph, const WeightMap& weights) {
  // A weight no step binds (one only its transpose serves) takes no device memory.
  std::vector<bool> bound(program_.graph_weights + program_.transposed_weights.size(), false);
  for (const Step& step : program_.steps)
    for (const BufferRef& ref : step.bindings)
      if (ref.kind == BufferRef::Kind::weight) bound[ref.index] = true;
  Uploader uploader(device_);
  auto upload = [&](const HostTensor& tensor, bool needed) {
    weights_.emplace_back(device_, needed ? tensor.nbytes() : 0, Memory::device);
    if (!needed) return;
    uploader.add(weights_.back(), {tensor.data(), tensor.nbytes()});
    stats_.weight_bytes += static_cast<std::int64_t>(tensor.nbytes());
  };
  std::vector<HostTensor> transposes(program_.transposed_weights.size());
  for (std::size_t i = 0; i < graph.weights.size(); ++i) {
    HostTensor tensor = weight_as_declared(graph, graph.weights[i], weights);
    for (std::size_t j = 0; j < transposes.size(); ++j)
      if (program_.transposed_weights[j] == i) transposes[j] = transposed(tensor);
    upload(tensor, bound[i]);
  }
  for (std::size_t j = 0; j < transposes.size(); ++j) upload(transposes[j], bound[graph.weights.size() + j]);
  uploader.flush();
}

void VulkanExecutable::make_command_objects() {
  VkDevice device = device_->handle();
  std::uint32_t descriptors = 0;
  for (const Step& step : program_.steps) descriptors += static_cast<std::uint32_t>(step.bindings.size());
  VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, std::max(descriptors, 1u)};
  VkDescriptorPoolCreateInfo pool{};
  pool.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO;
  pool.maxSets = std::max<std::uint32_t>(static_cast<std::uint32_t>(program_.steps.size()), 1);
  pool.poolSizeCount = 1;
  pool.pPoolSizes = &size;
  check(vkCreateDescriptorPool(device, &pool, nullptr, &descriptor_pool_), "vkCreateDescriptorPool");

  VkCommandBufferAllocateInfo allocate{};
  allocate.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO;
  allocate.commandPool = device_->command_pool();
  allocate.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  allocate.commandBufferCount = 1;
  check(vkAllocateCommandBuffers(device, &allocate, &commands_), "vkAllocateCommandBuffers");

  VkFenceCreateInfo fence{};
  fence.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO;
  check(vkCreateFence(device, &fence, nullptr, &fence_), "vkCreateFence");

  if (device_->features().timestamp_bits > 0) {
    VkQueryPoolCreateInfo query{};
    query.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO;
    query.queryType = VK_QUERY_TYPE_TIMESTAMP;
    query.queryCount = static_cast<std::uint32_t>(2 + program_.steps.size());  // start, end, one per step
    check(vkCreateQueryPool(device, &query, nullptr, &timestamps_), "vkCreateQueryPool");
  }
}

State VulkanExecutable::import_state(const HostState& host) const {
  host.check_matches(*layout_);
  return State(layout_, std::make_unique<VulkanStateStorage>(device_, host));
}

std::vector<const std::vector<std::uint32_t>*> VulkanExecutable::spirv_modules() const {
  std::vector<const std::vector<std::uint32_t>*> modules;
  for (const auto& pipeline : pipelines_->pipelines()) modules.push_back(&pipeline->spirv);
  return modules;
}

void VulkanExecutable::reserve(std::int64_t tokens) {
  if (tokens <= capacity_tokens_) return;
  vkDeviceWaitIdle(device_->handle());  // the old buffers may be in a submitted command buffer
  activations_.clear();
  for (const ActivationSlot& slot : program_.activations) activations_.emplace_back(device_, slot.bytes(tokens), Memory::device);
  tokens_ = Buffer(device_, static_cast<std::size_t>(tokens) * sizeof(std::int32_t), Memory::upload);
  std::size_t rows = program_.logits_per_token ? static_cast<std::size_t>(tokens) : 1;
  logits_ = Buffer(device_, rows * static_cast<std::size_t>(program_.logits_row) * sizeof(float), Memory::readback);
  capacity_tokens_ = tokens;
  ++generation_;
  stats_.device_bytes = stats_.weight_bytes;
  for (const Buffer& buffer : activations_) stats_.device_bytes += static_cast<std::int64_t>(buffer.size());
}

VkBuffer VulkanExecutable::resolve(const BufferRef& ref, const VulkanStateStorage& state) const {
  switch (ref.kind) {
    case BufferRef::Kind::weight: return weights_[ref.index].handle();
    case BufferRef::Kind::activation: return activations_[ref.index].handle();
    case BufferRef::Kind::state: return state.slot(ref.index).handle();
    case BufferRef::Kind::tokens: return tokens_.handle();
  }
  return VK_NULL_HANDLE;
}

std::size_t VulkanExecutable::logits_offset(const CallShape& call) const {
  if (!program_.logits_per_token || !call.last_logits_only || program_.head_shortened) return 0;
  return static_cast<std::size_t>((call.tokens - 1) * program_.logits_row);
}

std::size_t VulkanExecutable::logits_count(const CallShape& call) const {
  bool every_row = program_.logits_per_token && !call.last_logits_only;
  return static_cast<std::size_t>(program_.logits_row * (every_row ? call.tokens : 1));
}

void VulkanExecutable::record(const CallShape& call, const VulkanStateStorage& state) {
  VkDevice device = device_->handle();
  check(vkResetCommandBuffer(commands_, 0), "vkResetCommandBuffer");
  check(vkResetDescriptorPool(device, descriptor_pool_, 0), "vkResetDescriptorPool");
  VkCommandBufferBeginInfo begin{};
  begin.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO;
  check(vkBeginCommandBuffer(commands_, &begin), "vkBeginCommandBuffer");
  if (timestamps_ != VK_NULL_HANDLE) {
    vkCmdResetQueryPool(commands_, timestamps_, 0, static_cast<std::uint32_t>(2 + program_.steps.size()));
    vkCmdWriteTimestamp(commands_, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, timestamps_, 0);
  }
  full_barrier(commands_);  // what earlier submissions wrote (states, uploads) is visible here

  std::uint64_t range_limit = device_->features().max_storage_buffer_range;
  HazardTracker hazards;
  bool profiling = profiling_ && timestamps_ != VK_NULL_HANDLE;
  step_labels_.clear();
  recorded_kernels_ = 0;
  recorded_barriers_ = 0;
  for (const Step& step : program_.steps) {
    if (step.runs && !step.runs(call)) continue;
    ++recorded_kernels_;
    Launch launch = step.launch(call);
    if (profiling) step_labels_.push_back(fmt::format("{} {}", launch.pipeline->name, fmt::join(launch.push, ",")));
    const Pipeline& pipeline = *launch.pipeline;
    VkDescriptorSetAllocateInfo allocate{};
    allocate.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO;
    allocate.descriptorPool = descriptor_pool_;
    allocate.descriptorSetCount = 1;
    allocate.pSetLayouts = &pipeline.set_layout;
    VkDescriptorSet set = VK_NULL_HANDLE;
    check(vkAllocateDescriptorSets(device, &allocate, &set), "vkAllocateDescriptorSets");

    std::vector<VkDescriptorBufferInfo> infos(step.bindings.size());
    std::vector<VkWriteDescriptorSet> writes(step.bindings.size());
    for (std::size_t i = 0; i < step.bindings.size(); ++i) {
      VkBuffer buffer = resolve(step.bindings[i], state);
      std::size_t size = step.bindings[i].kind == BufferRef::Kind::weight       ? weights_[step.bindings[i].index].size()
                         : step.bindings[i].kind == BufferRef::Kind::activation ? activations_[step.bindings[i].index].size()
                         : step.bindings[i].kind == BufferRef::Kind::state      ? state.slot(step.bindings[i].index).size()
                                                                                : tokens_.size();
      infos[i] = {buffer, 0, std::min<std::uint64_t>(size, range_limit)};
      writes[i] = VkWriteDescriptorSet{};
      writes[i].sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET;
      writes[i].dstSet = set;
      writes[i].dstBinding = static_cast<std::uint32_t>(i);
      writes[i].descriptorCount = 1;
      writes[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
      writes[i].pBufferInfo = &infos[i];
    }
    vkUpdateDescriptorSets(device, static_cast<std::uint32_t>(writes.size()), writes.data(), 0, nullptr);

    // Steps that touch nothing an unfinished step writes (and write nothing it reads) run
    // without a barrier between them: the projections of one block overlap.
    std::vector<VkBuffer> read, written;
    for (std::size_t i = 0; i < step.bindings.size(); ++i)
      (i + step.writes < step.bindings.size() ? read : written).push_back(infos[i].buffer);
    if (hazards.conflicts(read, written)) {
      compute_barrier(commands_);
      ++recorded_barriers_;
      hazards.clear();
    }
    hazards.add(read, written);

    std::array<std::uint32_t, kPushWords> push{};
    std::copy(launch.push.begin(), launch.push.end(), push.begin());
    vkCmdBindPipeline(commands_, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline.pipeline);
    vkCmdBindDescriptorSets(commands_, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline.layout, 0, 1, &set, 0, nullptr);
    vkCmdPushConstants(commands_, pipeline.layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof(push), push.data());
    vkCmdDispatch(commands_, launch.groups[0], launch.groups[1], launch.groups[2]);
    if (profiling)
      vkCmdWriteTimestamp(commands_, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, timestamps_,
                          static_cast<std::uint32_t>(2 + step_labels_.size() - 1));
  }
  full_barrier(commands_);

  // The new state replaces the old one only now that every kernel has read it.
  for (std::size_t slot = 0; slot < program_.state_outputs.size(); ++slot) {
    VkBuffer source = resolve(program_.state_outputs[slot], state), target = state.slot(slot).handle();
    if (source == target) continue;
    VkBufferCopy region{0, 0, layout_->slots[slot].shape.numel() * sizeof(float)};
    vkCmdCopyBuffer(commands_, source, target, 1, &region);
  }
  VkBufferCopy logits{logits_offset(call) * sizeof(float), 0, logits_count(call) * sizeof(float)};
  vkCmdCopyBuffer(commands_, resolve(program_.logits, state), logits_.handle(), 1, &logits);
  VkMemoryBarrier to_host{};
  to_host.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER;
  to_host.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
  to_host.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
  vkCmdPipelineBarrier(commands_, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &to_host, 0, nullptr,
                       0, nullptr);
  if (timestamps_ != VK_NULL_HANDLE)
    vkCmdWriteTimestamp(commands_, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, timestamps_, 1);
  check(vkEndCommandBuffer(commands_), "vkEndCommandBuffer");
}

HostTensor VulkanExecutable::forward(std::span<const std::int32_t> tokens, State& state, const ForwardOptions& options) {
  check_tokens(tokens);
  auto* storage = dynamic_cast<VulkanStateStorage*>(&state.storage_for(kVulkanBackendName));
  if (storage == nullptr || !(state.layout() == *layout_))
    throw std::invalid_argument(fmt::format("the state was made for another model ({}, {} slots), not this {} model "
                                            "with {} slots", state.layout().arch, state.layout().slots.size(),
                                            layout_->arch, layout_->slots.size()));
  if (&storage->device() != device_.get())
    throw std::invalid_argument("the state lives on another Vulkan device: export it with to_host() and import it here");

  CallShape call{static_cast<std::int64_t>(tokens.size()), !options.all_logits};
  reserve(call.tokens);
  std::memcpy(tokens_.mapped(), tokens.data(), tokens.size_bytes());
  RecordKey key{call.tokens, call.last_logits_only, storage->id(), generation_, profiling_};
  if (recorded_ != key) {
    recorded_.reset();
    record(call, *storage);
    recorded_ = key;
  }

  VkSubmitInfo submit{};
  submit.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO;
  submit.commandBufferCount = 1;
  submit.pCommandBuffers = &commands_;
  VkDevice device = device_->handle();
  check(vkResetFences(device, 1, &fence_), "vkResetFences");
  check(vkQueueSubmit(device_->queue(), 1, &submit, fence_), "vkQueueSubmit");
  check(vkWaitForFences(device, 1, &fence_, VK_TRUE, UINT64_MAX), "vkWaitForFences");

  stats_.kernels_per_forward = recorded_kernels_;
  stats_.device_seconds = -1.0;
  step_times_.clear();
  if (options.time_on_device && timestamps_ != VK_NULL_HANDLE) {
    std::vector<std::uint64_t> ticks(2 + step_labels_.size());
    check(vkGetQueryPoolResults(device, timestamps_, 0, static_cast<std::uint32_t>(ticks.size()),
                                ticks.size() * sizeof(std::uint64_t), ticks.data(), sizeof(std::uint64_t),
                                VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT),
          "vkGetQueryPoolResults");
    std::uint64_t mask = device_->features().timestamp_bits >= 64 ? ~0ull : (1ull << device_->features().timestamp_bits) - 1;
    double period = device_->features().timestamp_period_ns * 1e-9;
    auto seconds = [&](std::uint64_t from, std::uint64_t to) { return static_cast<double>((to - from) & mask) * period; };
    stats_.device_seconds = seconds(ticks[0], ticks[1]);
    for (std::size_t i = 0; i < step_labels_.size(); ++i)
      step_times_.push_back({step_labels_[i], seconds(ticks[i == 0 ? 0 : 1 + i], ticks[2 + i])});
    if (!step_labels_.empty())
      step_times_.push_back({std::string(kCopiesLabel), seconds(ticks[1 + step_labels_.size()], ticks[1])});
  }

  logits_.invalidate();
  std::size_t count = logits_count(call);
  std::vector<float> values(count);
  std::memcpy(values.data(), logits_.mapped(), count * sizeof(float));
  const Shape& declared = program_.logits_shape;
  if (program_.logits_per_token && call.last_logits_only)
    return HostTensor::from_f32(Shape(std::vector<Dim>(declared.dims().begin() + 1, declared.dims().end())),
                                std::move(values));
  return HostTensor::from_f32(declared.bind(call.tokens), std::move(values));
}

}  // namespace rwkvc::vulkan
