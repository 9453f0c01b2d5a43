#include "backends/cuda/cuda_executable.h"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <stdexcept>

#include <fmt/format.h>

#include "backends/cpu/precompute.h"
#include "backends/cuda/cuda_check.h"
#include "backends/cuda/cuda_matmul.h"
#include "backends/cuda/module_parts.h"

namespace rwkvc::cuda {

namespace {

std::size_t at(ValueId id) { return static_cast<std::size_t>(id); }

std::int64_t max_numel(const std::vector<Shape>& shapes, std::int64_t tokens) {
  std::int64_t most = 0;
  for (const Shape& shape : shapes) most = std::max(most, shape.numel(tokens));
  return most;
}

// [K, N] -> [N, K], for weights a matmul reads untransposed (the kernels read rows of B).
HostTensor transposed(const HostTensor& t) {
  std::int64_t rows = t.shape()[0], columns = t.shape()[1];
  std::size_t size = dtype_size(t.dtype());
  HostTensor out(t.dtype(), Shape{columns, rows});
  const std::byte* src = t.data();
  std::byte* dst = out.mutable_data();
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < columns; ++c)
      std::memcpy(dst + (c * rows + r) * static_cast<std::int64_t>(size), src + (r * columns + c) * static_cast<std::int64_t>(size), size);
  return out;
}

// Device time per kernel (name and launch shape), most first, on stderr.
void print_profile(std::vector<RunContext::Timing>& timings, std::int64_t tokens) {
  std::map<std::string, std::pair<double, int>> by_name;
  double total = 0;
  for (RunContext::Timing& t : timings) {
    float ms = 0;
    check(cudaEventElapsedTime(&ms, t.start, t.stop), "cudaEventElapsedTime");
    by_name[t.name].first += ms;
    by_name[t.name].second += 1;
    total += ms;
    cudaEventDestroy(t.start);
    cudaEventDestroy(t.stop);
  }
  std::vector<std::pair<double, std::string>> rows;
  for (auto& [name, entry] : by_name) rows.emplace_back(entry.first, fmt::format("{:5d}x {}", entry.second, name));
  std::sort(rows.rbegin(), rows.rend());
  fmt::print(stderr, "profile of a {}-token forward: {} launches, {:.3f} ms in kernels\n", tokens, timings.size(), total);
  for (std::size_t i = 0; i < rows.size() && i < 25; ++i)
    fmt::print(stderr, "  {:8.3f} ms {:5.1f}%  {}\n", rows[i].first, 100 * rows[i].first / total, rows[i].second);
}

}  // namespace

CudaExecutable::CudaExecutable(const DeviceInfo& device, const Graph& graph, const WeightMap& weights)
    : device_(device) {
  Precomputed precomputed = precompute_token_free(graph, weights);
  graph_ = std::move(precomputed.graph);
  layout_ = std::make_shared<StateLayout>(rwkvc::state_layout(graph_));
  for (const Op& op : graph_.ops)
    if (op.kind == OpKind::embedding) {
      Dim rows = graph_.type(op.operands[0]).shape[0];
      vocab_size_ = vocab_size_ == 0 ? rows : std::min(vocab_size_, rows);
    }
  program_ = build_program(graph_);

  // The destructor does not run for a constructor that throws: release what was made.
  try {
    use_device(device_.index);
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    check(cudaEventCreate(&start_), "cudaEventCreate");
    check(cudaEventCreate(&stop_), "cudaEventCreate");
    if (program_.uses_cublas) {
      check(cublasCreate(&cublas_), "cublasCreate");
      check(cublasSetStream(cublas_, stream_), "cublasSetStream");
      // A workspace of our own keeps cuBLAS from allocating while a graph is captured.
      cublas_workspace_ = DeviceMemory(device_.index, 32u << 20);
      check(cublasSetWorkspace(cublas_, cublas_workspace_.get(), cublas_workspace_.bytes()), "cublasSetWorkspace");
    }
    if (const char* graphs = std::getenv("RWKVC_CUDA_GRAPHS"); graphs != nullptr && std::string(graphs) == "0")
      use_graphs_ = false;
    dependent_launch_ = device_.major >= 9;
    if (const char* pdl = std::getenv("RWKVC_CUDA_PDL"); pdl != nullptr && std::string(pdl) == "0")
      dependent_launch_ = false;

    upload_weights(precomputed.weights);
    plan_buffers();
    module_ = std::make_unique<Module>(device_.index, module_parts(program_.module), device_.arch());
    for (KernelHandle& handle : program_.module.handles()) handle.kernel = module_->kernel(handle.name);
    ensure_capacity(1);
    stats_.kernels_per_forward = static_cast<std::int64_t>(program_.steps.size());
    stats_.state_bytes = static_cast<std::int64_t>(layout_->total_floats() * sizeof(float));
  } catch (...) {
    release_device_objects();
    throw;
  }
}

CudaExecutable::~CudaExecutable() { release_device_objects(); }

void CudaExecutable::release_device_objects() {
  cudaSetDevice(device_.index);
  release_graph();
  if (stream_ != nullptr) cudaStreamSynchronize(stream_);
  if (cublas_ != nullptr) cublasDestroy(cublas_);
  if (start_ != nullptr) cudaEventDestroy(start_);
  if (stop_ != nullptr) cudaEventDestroy(stop_);
  if (host_tokens_ != nullptr) cudaFreeHost(host_tokens_);
  if (host_logits_ != nullptr) cudaFreeHost(host_logits_);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
  cublas_ = nullptr;
  start_ = stop_ = nullptr;
  host_tokens_ = nullptr;
  host_logits_ = nullptr;
  stream_ = nullptr;
}

void CudaExecutable::upload_weights(const WeightMap& weights) {
  weight_at_.assign(graph_.values.size(), nullptr);
  for (const WeightDecl& decl : graph_.weights) {
    HostTensor tensor = weight_as_declared(graph_, decl, weights);
    if (program_.transposed_weights.count(decl.value) != 0) tensor = transposed(tensor);
    DeviceMemory memory(device_.index, std::max<std::size_t>(tensor.nbytes(), 16));
    check(cudaMemcpy(memory.get(), tensor.data(), tensor.nbytes(), cudaMemcpyHostToDevice),
          fmt::format("upload of weight '{}'", decl.key));
    weight_at_[at(decl.value)] = memory.get();
    weight_bytes_ += static_cast<std::int64_t>(tensor.nbytes());
    weights_.push_back(std::move(memory));
  }
  stats_.weight_bytes = weight_bytes_;
}

// Activation buffers by liveness over the op sequence: a value takes a free buffer when its op
// runs (the free one nearest its size) and gives it back after its last reader. Logits and the
// state outputs not written in place live to the end.
void CudaExecutable::plan_buffers() {
  std::size_t count = graph_.values.size();
  constexpr std::size_t kUnread = std::numeric_limits<std::size_t>::max();
  std::vector<std::size_t> last_use(count, kUnread);
  std::vector<bool> activation(count, false), kept(count, false);
  for (std::size_t i = 0; i < graph_.ops.size(); ++i) {
    for (ValueId id : graph_.ops[i].results) activation[at(id)] = true;
    // Read when its step runs, which a batch may delay to a later op.
    for (ValueId id : graph_.ops[i].operands)
      last_use[at(id)] = last_use[at(id)] == kUnread ? program_.runs_at[i] : std::max(last_use[at(id)], program_.runs_at[i]);
  }
  if (graph_.logits != kNoValue) kept[at(graph_.logits)] = true;
  for (std::size_t s = 0; s < graph_.states.size(); ++s) {
    const StateDecl& decl = graph_.states[s];
    if (decl.output == kNoValue) continue;
    if (program_.state_in_place[s])
      activation[at(decl.output)] = false;  // bound to the state itself
    else
      kept[at(decl.output)] = true;
  }
  // Buffers given back after each op: values read last there, and results nobody reads once
  // their step has run.
  std::vector<std::vector<ValueId>> releases(graph_.ops.size());
  for (std::size_t i = 0; i < graph_.ops.size(); ++i)
    for (ValueId id : graph_.ops[i].results)
      if (activation[at(id)] && !kept[at(id)])
        releases[last_use[at(id)] == kUnread ? program_.runs_at[i] : last_use[at(id)]].push_back(id);

  buffer_of_.assign(count, -1);
  std::vector<int> free;
  auto size_of = [](const Shape& shape) { return shape.numel(1 << 20); };
  auto take = [&](ValueId id) {
    const Shape& shape = graph_.type(id).shape;
    // The smallest free buffer that already fits, else the largest (which then grows).
    int best = -1;
    for (int b : free) {
      std::int64_t have = 0;
      for (const Shape& s : buffer_shapes_[static_cast<std::size_t>(b)]) have = std::max(have, size_of(s));
      std::int64_t best_have = 0;
      if (best >= 0)
        for (const Shape& s : buffer_shapes_[static_cast<std::size_t>(best)]) best_have = std::max(best_have, size_of(s));
      bool fits = have >= size_of(shape), best_fits = best >= 0 && best_have >= size_of(shape);
      if (best < 0 || (fits && (!best_fits || have < best_have)) || (!fits && !best_fits && have > best_have)) best = b;
    }
    if (best < 0) {
      best = static_cast<int>(buffer_shapes_.size());
      buffer_shapes_.emplace_back();
    } else {
      free.erase(std::find(free.begin(), free.end(), best));
    }
    buffer_shapes_[static_cast<std::size_t>(best)].push_back(shape);
    buffer_of_[at(id)] = best;
  };
  auto give_back = [&](ValueId id) {
    int b = buffer_of_[at(id)];
    if (std::find(free.begin(), free.end(), b) == free.end()) free.push_back(b);
  };
  for (std::size_t i = 0; i < graph_.ops.size(); ++i) {
    const Op& op = graph_.ops[i];
    for (ValueId id : op.results)
      if (activation[at(id)]) take(id);
    // Operands read last here, and results nobody reads, give their buffers back.
    for (ValueId id : releases[i]) give_back(id);
  }
}

void CudaExecutable::ensure_capacity(std::int64_t tokens) {
  if (tokens <= capacity_) return;
  std::int64_t capacity = static_cast<std::int64_t>(std::bit_ceil(static_cast<std::uint64_t>(tokens)));
  release_graph();
  if (stream_ != nullptr) check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  buffers_.clear();
  scratch_.clear();
  for (const auto& shapes : buffer_shapes_)
    buffers_.emplace_back(device_.index, static_cast<std::size_t>(max_numel(shapes, capacity)) * sizeof(float));
  for (const auto& shapes : program_.scratch)
    scratch_.emplace_back(device_.index, static_cast<std::size_t>(max_numel(shapes, capacity)) * sizeof(float));
  staging_ = DeviceMemory(device_.index, static_cast<std::size_t>(max_numel(program_.staged, capacity)) * 2);
  tokens_ = DeviceMemory(device_.index, static_cast<std::size_t>(capacity) * sizeof(std::int32_t));
  if (host_tokens_ != nullptr) cudaFreeHost(host_tokens_);
  host_tokens_ = nullptr;
  check(cudaMallocHost(reinterpret_cast<void**>(&host_tokens_), static_cast<std::size_t>(capacity) * sizeof(std::int32_t)),
        "cudaMallocHost");
  capacity_ = capacity;
  ++generation_;

  std::int64_t bytes = weight_bytes_ + static_cast<std::int64_t>(staging_.bytes() + tokens_.bytes() + cublas_workspace_.bytes());
  for (const DeviceMemory& m : buffers_) bytes += static_cast<std::int64_t>(m.bytes());
  for (const DeviceMemory& m : scratch_) bytes += static_cast<std::int64_t>(m.bytes());
  stats_.device_bytes = bytes;
}

State CudaExecutable::import_state(const HostState& host) const {
  host.check_matches(*layout_);
  return State(layout_, std::make_unique<CudaStateStorage>(device_.index, *layout_, host));
}

void CudaExecutable::check_state(const State& state) const {
  const StateLayout& have = state.layout();
  if (have == *layout_) return;
  if (have.arch != layout_->arch)
    throw std::invalid_argument(fmt::format("state is for a '{}' model, this model is '{}'", have.arch, layout_->arch));
  for (std::size_t i = 0; i < std::max(have.slots.size(), layout_->slots.size()); ++i) {
    std::string got = i < have.slots.size() ? fmt::format("'{}' {}", have.slots[i].name, to_string(have.slots[i].shape)) : "missing";
    std::string want = i < layout_->slots.size()
                           ? fmt::format("'{}' {}", layout_->slots[i].name, to_string(layout_->slots[i].shape))
                           : "nothing";
    if (got != want) throw std::invalid_argument(fmt::format("state slot {} is {}, this model expects {}", i, got, want));
  }
  throw std::invalid_argument("state was made for another model");
}

void CudaExecutable::bind_slots(CudaStateStorage& storage, RunContext& ctx) const {
  ctx.slots.assign(program_.slot_count(), nullptr);
  for (std::size_t id = 0; id < graph_.values.size(); ++id) {
    if (weight_at_[id] != nullptr) ctx.slots[id] = weight_at_[id];
    if (buffer_of_[id] >= 0) ctx.slots[id] = buffers_[static_cast<std::size_t>(buffer_of_[id])].get();
  }
  ctx.slots[at(graph_.tokens)] = tokens_.get();
  for (std::size_t s = 0; s < graph_.states.size(); ++s) {
    const StateDecl& decl = graph_.states[s];
    ctx.slots[at(decl.input)] = storage.slot(s);
    if (decl.output != kNoValue && program_.state_in_place[s]) ctx.slots[at(decl.output)] = storage.slot(s);
  }
  ctx.slots[program_.staging_slot] = staging_.get();
  for (std::size_t s = 0; s < scratch_.size(); ++s) ctx.slots[program_.scratch_slot(s)] = scratch_[s].get();
}

void CudaExecutable::run_steps(RunContext& ctx) {
  for (const Step& step : program_.steps) step(ctx);
}

void CudaExecutable::release_graph() {
  if (decode_graph_ != nullptr) cudaGraphExecDestroy(decode_graph_);
  decode_graph_ = nullptr;
  graph_state_ = nullptr;
}

// The one-token call captured once per state memory and buffer generation (the steps bake
// their pointers in), then replayed.
void CudaExecutable::replay_decode_graph(RunContext& ctx, const void* state_key) {
  if (decode_graph_ == nullptr || graph_state_ != state_key || graph_generation_ != generation_) {
    release_graph();
    check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
    try {
      run_steps(ctx);
    } catch (...) {
      cudaGraph_t broken = nullptr;
      cudaStreamEndCapture(stream_, &broken);
      if (broken != nullptr) cudaGraphDestroy(broken);
      throw;
    }
    cudaGraph_t graph = nullptr;
    check(cudaStreamEndCapture(stream_, &graph), "cudaStreamEndCapture");
    cudaError_t status = cudaGraphInstantiate(&decode_graph_, graph, 0);
    cudaGraphDestroy(graph);
    check(status, "cudaGraphInstantiate");
    graph_state_ = state_key;
    graph_generation_ = generation_;
    graph_launches_ = ctx.launches;
  }
  check(cudaGraphLaunch(decode_graph_, stream_), "cudaGraphLaunch");
  ctx.launches = graph_launches_;
}

HostTensor CudaExecutable::forward(std::span<const std::int32_t> tokens, State& state, const ForwardOptions& options) {
  check_tokens(tokens);
  auto& storage = dynamic_cast<CudaStateStorage&>(state.storage_for(kBackendName));
  check_state(state);
  if (storage.device() != device_.index)
    throw std::invalid_argument(fmt::format("state lives on CUDA device {}, this executable on device {}",
                                            storage.device(), device_.index));

  use_device(device_.index);
  auto count = static_cast<std::int64_t>(tokens.size());
  ensure_capacity(count);
  const Shape& declared = graph_.type(graph_.logits).shape;
  bool per_position = declared.rank() > 0 && declared[0] == kSeq;
  std::int64_t all = declared.numel(count);
  std::int64_t row = per_position ? declared.numel(1) : all;
  std::int64_t wanted = per_position && !options.all_logits ? row : all;
  if (host_logits_floats_ < static_cast<std::size_t>(wanted)) {
    if (host_logits_ != nullptr) cudaFreeHost(host_logits_);
    host_logits_ = nullptr;
    check(cudaMallocHost(reinterpret_cast<void**>(&host_logits_), static_cast<std::size_t>(wanted) * sizeof(float)),
          "cudaMallocHost");
    host_logits_floats_ = static_cast<std::size_t>(wanted);
  }

  RunContext ctx;
  ctx.stream = stream_;
  ctx.cublas = cublas_;
  ctx.T = count;
  ctx.last_logits_only = per_position && !options.all_logits;
  // Decode and short chunks (GEMVs, small kernels) gain from dependent launches. Long prompts
  // lose: cuBLAS kernels release their dependents early, whose waiting blocks then hold SM
  // resources the GEMM's later waves need (measured on the H100: 4096-token prefill 50% slower).
  ctx.dependent_launch = dependent_launch_ && count <= kGemvMaxRows;
  bind_slots(storage, ctx);

  std::memcpy(host_tokens_, tokens.data(), tokens.size() * sizeof(std::int32_t));
  if (options.time_on_device) check(cudaEventRecord(start_, stream_), "cudaEventRecord");
  check(cudaMemcpyAsync(tokens_.get(), host_tokens_, tokens.size() * sizeof(std::int32_t), cudaMemcpyHostToDevice, stream_),
        "token upload");
  std::vector<RunContext::Timing> timings;
  bool profile = std::getenv("RWKVC_CUDA_PROFILE") != nullptr;
  if (profile) ctx.timings = &timings;
  if (count == 1 && use_graphs_ && !profile)
    replay_decode_graph(ctx, storage.slot(0));
  else if (!(use_graphs_ && prefill_graphs_.run(ctx, storage, *layout_, generation_, stream_,
                                                 [&](CudaStateStorage& s, RunContext& c) { bind_slots(s, c); },
                                                 [&](RunContext& c) { run_steps(c); })))
    run_steps(ctx);
  const float* logits = ctx.f32(at(graph_.logits)) + (all - wanted);
  check(cudaMemcpyAsync(host_logits_, logits, static_cast<std::size_t>(wanted) * sizeof(float), cudaMemcpyDeviceToHost, stream_),
        "logits download");
  if (options.time_on_device) check(cudaEventRecord(stop_, stream_), "cudaEventRecord");
  check(cudaStreamSynchronize(stream_), "forward");

  stats_.kernels_per_forward = ctx.launches;
  if (profile) print_profile(timings, count);
  stats_.device_seconds = -1.0;
  if (options.time_on_device) {
    float ms = 0.0f;
    check(cudaEventElapsedTime(&ms, start_, stop_), "cudaEventElapsedTime");
    stats_.device_seconds = ms / 1000.0;
  }
  Shape shape = per_position && !options.all_logits
                    ? Shape(std::vector<Dim>(declared.dims().begin() + 1, declared.dims().end()))
                    : declared.bind(count);
  return HostTensor::from_f32(std::move(shape), std::vector<float>(host_logits_, host_logits_ + wanted));
}

}  // namespace rwkvc::cuda
