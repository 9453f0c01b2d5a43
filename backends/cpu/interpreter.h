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

  // A zeroed buffer of `count` floats for value `id`: the start of its planned buffer when
  // plan-memory placed it (see use_plan), else one owned by this frame.
  std::span<float> allocate(ValueId id, std::int64_t count);
  // Frees an unplanned value's buffer; a planned one stays for the next value placed there.
  void release(ValueId id);

  // Places values as plan-memory did (`buffer_of` by ValueId, kNoBuffer for unplanned ones), in
  // `buffers`, which outlive the frame so that their memory serves call after call.
  void use_plan(std::span<const std::int32_t> buffer_of, std::vector<std::vector<float>>& buffers) {
    planned_buffer = buffer_of;
    planned = &buffers;
  }

  std::span<const TensorType> types;
  std::int64_t seq_len;
  std::span<const std::int32_t> tokens;
  std::vector<std::span<const float>> values;  // by ValueId: owned here, or borrowed (weights, state)
  std::vector<std::vector<float>> owned;       // by ValueId: the buffers of results computed here
  std::span<const std::int32_t> planned_buffer;      // by ValueId, or empty: no plan
  std::vector<std::vector<float>>* planned = nullptr;  // by buffer number
};

// Throws IrError naming op #`index` if the interpreter cannot run it (a non-float operand, an
// embedding that gathers by something other than the graph's tokens, nested regions).
void check_supported(const Graph& graph, const Op& op, std::size_t index);

// Runs `op`, reading its operands from `frame` and allocating its results there.
void run_op(const Op& op, Frame& frame);

}  // namespace rwkvc::cpu
