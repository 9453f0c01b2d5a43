// The CPU interpreter's core: one f32 buffer per value and a dispatch from each op to its
// kernel. The executable runs a graph's plan through it; precompute runs the token-free ops.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "ir/graph.h"

namespace rwkvc::cpu {

// The values of one evaluation scope (a graph's, or a region body's).
struct Frame {
  // `types`: the scope's value types by id; T binds to `seq_len`.
  Frame(std::span<const TensorType> types, std::int64_t seq_len, std::span<const std::int32_t> tokens)
      : types(types), seq_len(seq_len), tokens(tokens), values(types.size()), owned(types.size()) {}

  // A zeroed buffer of `count` floats for value `id`, owned by this frame.
  std::span<float> allocate(ValueId id, std::int64_t count);
  void release(ValueId id);

  std::span<const TensorType> types;
  std::int64_t seq_len;
  std::span<const std::int32_t> tokens;
  std::vector<std::span<const float>> values;  // by ValueId: owned here, or borrowed (weights, state)
  std::vector<std::vector<float>> owned;       // by ValueId: the buffers of results computed here
};

// Throws IrError naming op #`index` if the interpreter cannot run it (a non-float operand, an
// embedding that gathers by something other than the graph's tokens, nested regions).
void check_supported(const Graph& graph, const Op& op, std::size_t index);

// Runs `op`, reading its operands from `frame` and allocating its results there.
void run_op(const Op& op, Frame& frame);

}  // namespace rwkvc::cpu
