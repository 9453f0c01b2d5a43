// The steps of the ops that hand-written kernels run (matmul, the normalisations and
// reductions, embedding, wkv4, wkv7): the kernel chosen for the op's shapes and dtypes, and
// the launch for each call's T.
#pragma once

#include <span>

#include "backends/vulkan/program.h"

namespace rwkvc::vulkan {

// Whether a hand-written kernel runs `kind`.
bool has_kernel_step(OpKind kind);

struct OpOperands {
  std::span<const TensorType> types;  // the scope's value types by id (T unbound)
  std::vector<BufferRef> operands;    // where each operand of the op is
  std::vector<BufferRef> results;     // where each result goes
  // The graph's logits matmul: with last_logits_only it runs for the last row alone.
  bool computes_logits = false;
};

// Throws IrError for a shape the kernels do not take (e.g. a head larger than a workgroup).
Step kernel_step(const Op& op, const OpOperands& where, PipelineStore& pipelines, const DeviceFeatures& features);

}  // namespace rwkvc::vulkan
