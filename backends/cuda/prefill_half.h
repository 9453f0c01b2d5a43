// 16-bit activations in long calls. cuBLAS multiplies f16/bf16 weights by activations rounded
// to the weights' type; a value that only such matmuls read is therefore stored in that type
// by the kernel that produces it (a generated kernel, or the cuBLAS call itself), so that no
// conversion kernel runs and half the bytes move. The rounding is the one the conversion did,
// at the same place (round to nearest even from the f32 value), so results do not change.
// Calls of up to kGemvMaxRows tokens keep every value in f32 (the GEMVs read f32 rows).
// RWKVC_CUDA_HALF_ACTIVATIONS=0 (read when a program is built) keeps every value in f32.
#pragma once

#include <cstddef>
#include <iterator>
#include <span>
#include <vector>

#include "backends/cuda/cuda_matmul.h"
#include "backends/cuda/cuda_program.h"
#include "backends/cuda/cuda_steps.h"
#include "backends/cuda/fused_codegen.h"
#include "ir/graph.h"

namespace rwkvc::cuda {

bool half_activations_enabled();

// By ValueId: the 16-bit type the value is held in during calls of more than kGemvMaxRows
// tokens, or f32. A value qualifies when every reader multiplies it, as the [T, K] left
// operand, by a weight of that one 16-bit type (directly or through a region argument that the
// body reads only so), it is no state and not the logits, and its producer can store 16 bits:
// a generated kernel outside the reductions, or such a matmul.
std::vector<DType> long_call_dtypes(const Graph& graph);

// The generated kernels that compute `outputs` into `out_slots`, as add_fused_steps adds them;
// where an output's slot holds 16 bits in long calls (program.long_call_dtype), a second set of
// kernels stores it so, and the step picks the set by the call's length.
template <typename InSlot>
void add_generated_steps(Program& program, const CodegenScope& scope, std::span<const ValueId> outputs,
                         const std::vector<bool>& materialized, const std::vector<std::size_t>& out_slots,
                         InSlot in_slot);

// Runs `long_steps` in calls of more than kGemvMaxRows tokens, `short_steps` otherwise.
Step by_call_length(std::vector<Step> short_steps, std::vector<Step> long_steps);

template <typename InSlot>
void add_generated_steps(Program& program, const CodegenScope& scope, std::span<const ValueId> outputs,
                         const std::vector<bool>& materialized, const std::vector<std::size_t>& out_slots,
                         InSlot in_slot) {
  std::vector<DType> store_as(scope.types.size(), DType::f32);
  bool any = false;
  for (std::size_t p = 0; p < outputs.size(); ++p) {
    std::size_t slot = out_slots[p];
    if (slot < program.long_call_dtype.size() && program.long_call_dtype[slot] != DType::f32) {
      store_as[static_cast<std::size_t>(outputs[p])] = program.long_call_dtype[slot];
      any = true;
    }
  }
  std::size_t first = program.steps.size();
  add_fused_steps(program, generate_fused(scope, outputs, materialized), out_slots, in_slot);
  if (!any) return;
  auto take = [&] {
    std::vector<Step> steps(std::make_move_iterator(program.steps.begin() + static_cast<std::ptrdiff_t>(first)),
                            std::make_move_iterator(program.steps.end()));
    program.steps.resize(first);
    return steps;
  };
  std::vector<Step> short_steps = take();
  CodegenScope half{scope.types, scope.producer, std::move(store_as)};
  add_fused_steps(program, generate_fused(half, outputs, materialized), out_slots, in_slot);
  std::vector<Step> long_steps = take();
  program.steps.push_back(by_call_length(std::move(short_steps), std::move(long_steps)));
}

}  // namespace rwkvc::cuda
