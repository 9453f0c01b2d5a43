// The steps of the ops that hand-written kernels run (matmul, the normalisations and
// reductions, embedding, wkv4, wkv7): the kernel chosen for the op's shapes and dtypes, and
// the launch for each call's T.
#pragma once

#include <span>

#include "backends/vulkan/program.h"
#include "backends/vulkan/shaders/templates.h"

namespace rwkvc::vulkan {

// Whether a hand-written kernel runs `kind`.
bool has_kernel_step(OpKind kind);

struct OpOperands {
  std::span<const TensorType> types;  // the scope's value types by id (T unbound)
  std::vector<BufferRef> operands;    // where each operand of the op is
  std::vector<BufferRef> results;     // where each result goes
  // The graph's logits matmul: with last_logits_only it runs for the last row alone.
  bool computes_logits = false;
  // matmul with transpose_b = 0 whose B operand is bound to the weight's transpose ([N, K]).
  bool b_transposed = false;
  // matmul: an elementwise tail stored in place of the product; its inputs follow a and B in
  // `operands`.
  Epilogue epilogue;
};

// Points a matmul's B operand (transpose_b = 0, B a weight [K, N]) at the weight's transpose
// (Program::transposed): decode then runs every weight product on the row GEMV, whose
// subgroup per output row keeps 16-byte loads in flight (the column kernel gave a LoRA down
// [C, rank] one or two workgroups). `types` are the scope's value types.
void read_weight_transposed(Program& program, const Op& op, std::span<const TensorType> types, OpOperands& operands);

// Throws IrError for a shape the kernels do not take (e.g. a head larger than a workgroup).
Step kernel_step(const Op& op, const OpOperands& where, PipelineStore& pipelines, const DeviceFeatures& features);

}  // namespace rwkvc::vulkan
