// The steps of the ops that are not matmuls: each launches one hand-written or generated kernel
// on slots (cuda_program.h), with its sizes read off the shapes and T at launch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "backends/cuda/cuda_program.h"
#include "backends/cuda/fused_codegen.h"

namespace rwkvc::cuda {

// table [V, C] (f32, f16 or bf16) gathered by the i32 tokens into out [T, C].
Step embedding_step(Program& program, DType table_dtype, std::size_t table, std::size_t tokens, std::size_t out,
                    const Shape& out_shape);

Step layer_norm_step(Program& program, std::size_t x, std::size_t weight, std::size_t bias, std::size_t out,
                     const Shape& shape, float eps);

// l2_norm, group_norm or reduce_sum of x (operands[0]; group_norm's weight and bias follow)
// over groups of the last axis, one warp per group.
Step group_reduction_step(Program& program, const Op& op, const std::vector<std::size_t>& operands, std::size_t out,
                          const Shape& shape);

// r, w, k, v, a, b [T, H*N], state [H, N, N] -> y [T, H*N], state' (may be the same memory).
Step wkv7_step(Program& program, const std::vector<std::size_t>& operands, const std::vector<std::size_t>& results,
               const Shape& sequence_shape, const Shape& state_shape);

// w, u, k, v, aa, bb, pp -> y, aa', bb', pp' (the state may be updated in place).
Step wkv4_step(Program& program, const std::vector<std::size_t>& operands, const std::vector<std::size_t>& results,
               const Shape& sequence_shape, std::int64_t channels);

// One step per generated kernel; `out_slots[p]` is where output position p goes, `in_slot` maps
// each input value to its slot.
template <typename InSlot>
void add_fused_steps(Program& program, const std::vector<FusedKernel>& kernels, const std::vector<std::size_t>& out_slots,
                     InSlot in_slot);
Step fused_step(KernelHandle* kernel, std::vector<std::size_t> outs, std::vector<std::size_t> ins, Shape domain,
                bool block_per_row);

// Copies (from slot, to slot, element count) in one launch per 32.
Step copy_step(Program& program, std::vector<std::pair<std::size_t, std::size_t>> slots, std::vector<std::int64_t> counts);

template <typename InSlot>
void add_fused_steps(Program& program, const std::vector<FusedKernel>& kernels, const std::vector<std::size_t>& out_slots,
                     InSlot in_slot) {
  for (const FusedKernel& kernel : kernels) {
    std::vector<std::size_t> outs, ins;
    for (std::size_t p : kernel.output_positions) outs.push_back(out_slots[p]);
    for (ValueId id : kernel.inputs) ins.push_back(in_slot(id));
    program.steps.push_back(fused_step(program.module.kernel(kernel.name, kernel.source), outs, ins, kernel.domain,
                                            kernel.block_per_row));
  }
}

}  // namespace rwkvc::cuda
