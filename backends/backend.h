// The execution interface every backend implements. A Backend compiles a graph plus its
// weights into an Executable; forward(tokens, state) runs the whole token sequence at once
// (GPT mode) and leaves the updated state in `state`. The State is a value: copyable, and
// exportable to and importable from host memory, so it can move between backends.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ir/graph.h"
#include "ir/state_layout.h"
#include "ir/tensor.h"

namespace rwkvc {

// A backend's storage for one state (host memory on the CPU, device buffers on a GPU).
class StateStorage {
 public:
  virtual ~StateStorage() = default;
  virtual std::unique_ptr<StateStorage> clone() const = 0;
  virtual HostState to_host(const StateLayout& layout) const = 0;
  virtual std::string_view backend() const = 0;
};

class State {
 public:
  State(std::shared_ptr<const StateLayout> layout, std::unique_ptr<StateStorage> storage);
  State(const State& other);
  State& operator=(const State& other);
  State(State&&) noexcept = default;
  State& operator=(State&&) noexcept = default;

  const StateLayout& layout() const { return *layout_; }
  std::string_view backend() const { return storage_->backend(); }
  HostState to_host() const { return storage_->to_host(*layout_); }

  // For backends: the storage, checked to belong to `backend`.
  StateStorage& storage_for(std::string_view backend);

 private:
  std::shared_ptr<const StateLayout> layout_;
  std::unique_ptr<StateStorage> storage_;
};

struct ForwardOptions {
  bool all_logits = false;  // logits for every position ([T, V]) instead of the last ([V])
  // Measure the call's device time with device events (CUDA events, Vulkan timestamp queries);
  // stats().device_seconds reports it. Off by default: timing can cost a synchronisation.
  bool time_on_device = false;
};

// What an executable reports of itself and of its last forward call (for --stats and bench).
struct ExecutionStats {
  std::int64_t kernels_per_forward = 0;  // kernels (dispatches, launches) the last forward call ran
  double device_seconds = -1.0;          // the last forward's device time; < 0 when not measured
  std::int64_t weight_bytes = 0;         // bytes of weights as the backend holds them
  std::int64_t device_bytes = 0;         // all device memory the executable holds (0 on the CPU)
  std::int64_t state_bytes = 0;          // one state's bytes
};

class Executable {
 public:
  virtual ~Executable() = default;

  virtual const StateLayout& state_layout() const = 0;
  std::int64_t vocab_size() const { return vocab_size_; }

  // A state holding each slot's init value.
  State new_state() const { return import_state(HostState::fresh(state_layout())); }
  // Throws std::invalid_argument naming the slot if `host` was made for another model shape.
  virtual State import_state(const HostState& host) const = 0;

  // Throws std::invalid_argument for an empty token list, a token id outside the vocabulary
  // (naming its position), or a state made by another backend or for another model.
  virtual HostTensor forward(std::span<const std::int32_t> tokens, State& state, const ForwardOptions& options = {}) = 0;

  virtual ExecutionStats stats() const { return {}; }

  // Throws std::invalid_argument for an empty list or a token outside the vocabulary (naming
  // it and its position); every backend's forward calls it first.
  void check_tokens(std::span<const std::int32_t> tokens) const;

 protected:
  std::int64_t vocab_size_ = 0;  // set by compile; 0 accepts any non-negative token
};

// What make_backend takes besides the name.
struct BackendOptions {
  int device = 0;  // index into the backend's device list (`rwkvc devices`)
};

// A device's ceilings as measured on it, for rooflines.
struct DeviceCeilings {
  double bandwidth_bytes_per_s = 0;  // a device-to-device copy, bytes read + written
  double peak_flops = 0;             // the fastest matmul the backend can run (e.g. a cuBLAS f16 GEMM)
  std::string how;                   // how both were measured, for reports
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  // The device this backend runs on, in words ("cpu: 2 threads", "vulkan: NVIDIA H100 ...").
  virtual std::string device_name() const = 0;
  // Measures the device's memory bandwidth and peak matmul rate (seconds of work); nothing
  // where the backend has no way to (the CPU's are measured by the benchmark tool itself).
  virtual std::optional<DeviceCeilings> measure_ceilings() const { return std::nullopt; }
  // Throws std::invalid_argument naming the weight if one is missing or has the wrong shape.
  virtual std::unique_ptr<Executable> compile(const Graph& graph, const WeightMap& weights) const = 0;
};

// "cpu", "vulkan", "cuda" (those this build has). Throws std::invalid_argument listing the known
// names for another name, and std::runtime_error saying why when the backend has no usable device
// (e.g. "no CUDA device: libcuda.so.1 not found") or `options.device` is out of range.
std::unique_ptr<Backend> make_backend(std::string_view name, const BackendOptions& options = {});
std::vector<std::string> backend_names();

// One backend's devices, for `rwkvc devices`: their names in index order, or why there are none.
struct DeviceList {
  std::string backend;
  std::vector<std::string> devices;
  std::string unavailable;  // e.g. "no CUDA device (libcuda.so.1 not found)"; empty when usable
};
std::vector<DeviceList> list_devices();  // every backend of this build

// The weight bound to `decl`, checked against the graph's declared shape. Checkpoints store
// some vectors with leading unit dimensions ([1, 1, C] for [C]); those match too.
const HostTensor& bind_weight(const Graph& graph, const WeightDecl& decl, const WeightMap& weights);
// bind_weight's tensor in the shape and dtype the graph declares (the lower-precision pass
// declares f16/bf16 for matrices a checkpoint may store in f32): shares the bytes when they
// already agree, else a rounded copy (round to nearest even).
HostTensor weight_as_declared(const Graph& graph, const WeightDecl& decl, const WeightMap& weights);

}  // namespace rwkvc
