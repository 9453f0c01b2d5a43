// What the Vulkan executable runs: the graph (after precompute) lowered to a list of kernel
// launches over numbered buffers. Built once by plan_program; each forward call binds T and
// records the steps into one command buffer.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "backends/vulkan/device.h"
#include "backends/vulkan/pipeline_store.h"
#include "backends/vulkan/shaders/templates.h"
#include "ir/graph.h"

namespace rwkvc::vulkan {

// A buffer a step reads or writes.
struct BufferRef {
  enum class Kind { weight, activation, state, tokens };
  Kind kind;
  std::uint32_t index = 0;  // into weights, activation slots or state slots
  bool operator==(const BufferRef&) const = default;
};

// What a forward call fixes: the sequence length and whether only the last row of logits is
// wanted (then the head matmul runs for that row alone).
struct CallShape {
  std::int64_t tokens = 1;
  bool last_logits_only = true;
};

struct Launch {
  const Pipeline* pipeline = nullptr;
  std::array<std::uint32_t, 3> groups{1, 1, 1};
  std::vector<std::uint32_t> push;
};

// What the decode folds (decode_folds.h) need to know of a step, when it has one of these forms.
// A matmul step whose one-row launch is the row GEMV (B [N, K]); its bindings are a, B, the
// epilogue's inputs, out.
struct RowGemvForm {
  GemvShape shape;
  std::int64_t n = 0, k = 0;
  Epilogue epilogue;
};
// A layer norm + token_shift_mix step (norm_mix_kernel); `folded` is its shape with the
// generated functions named for a kernel that also runs a GEMV (prefix "nm_").
struct NormMixForm {
  NormMixShape folded;
  bool uses_softplus = false;
};

// A LoRA up product folded into a wkv kernel: the hidden [T, rank] times the up's transpose
// [C, rank] (dtype).
struct LoraUp {
  std::int64_t rank = 0;
  DType dtype = DType::f32;
};
// The one-kernel wkv step of short calls: its bindings are its `inputs` region inputs, then
// state_in and the results. `source` rebuilds the kernel with some inputs computed inside it
// (by input index; their bindings become the hidden vectors, and the up matrices follow the
// inputs in index order); nothing when the body does not allow it. Valid only during
// plan_program (it reads the graph's region).
struct WkvForm {
  std::size_t inputs = 0;
  std::function<std::optional<KernelSource>(const std::map<std::size_t, LoraUp>&)> source;
  std::function<std::function<Launch(const CallShape&)>(const Pipeline*)> launch;
};

struct Step {
  std::vector<BufferRef> bindings;  // the pipeline's bindings, in order: what it reads, then what it writes
  std::size_t writes = 0;           // how many of the last bindings it writes
  std::function<Launch(const CallShape&)> launch;
  // Whether the step runs for a call (empty: always). A region may lower to two paths, one
  // kernel for short calls and several for long ones; each call records one of them.
  std::function<bool(const CallShape&)> runs = {};
  std::shared_ptr<const RowGemvForm> row_gemv = {};
  std::shared_ptr<const NormMixForm> norm_mix = {};
  std::shared_ptr<const WkvForm> wkv = {};
};

// An activation buffer: the values whose lives do not overlap (pack_activations), sized for the
// largest at the call's T.
struct ActivationSlot {
  std::vector<TensorType> holds;
  std::size_t bytes(std::int64_t tokens) const;
};

struct Program {
  std::vector<Step> steps;
  // Weights the executable uploads transposed, after the graph's own: weight
  // graph_weights + j is the [N, K] transpose of the [K, N] weight transposed_weights[j], so a
  // matrix multiplied from the left (the LoRA matrices, x @ w1) is read row by row.
  std::size_t graph_weights = 0;
  std::vector<std::uint32_t> transposed_weights;
  std::vector<ActivationSlot> activations;
  std::vector<BufferRef> state_outputs;  // by state slot: where the new value is left
  BufferRef logits{BufferRef::Kind::activation, 0};
  Shape logits_shape;  // as declared (T unbound)
  std::int64_t logits_row = 0;  // elements per position
  bool logits_per_token = true;  // logits have a T row per token
  bool head_shortened = false;  // with last_logits_only, the logits buffer holds only the last row

  // The derived weight holding weight `source` transposed (made on first request).
  BufferRef transposed(std::uint32_t source);
};

// Lowers `graph` (precompute_token_free's output: weights in graph.weights order are
// BufferRef::weight 0, 1, ...; states likewise). Throws IrError for an op it has no kernel for.
Program plan_program(const Graph& graph, PipelineStore& pipelines, const DeviceFeatures& features);

}  // namespace rwkvc::vulkan
