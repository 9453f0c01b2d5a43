// The code generator for fused elementwise kernels: a group of elementwise ops (unary, binary
// and lerp with NumPy broadcasting, token_shift, last_row, reshape, constant) becomes one
// kernel with one invocation per output element. Every value of the group is a GLSL function
// of its flat index, so an op that reads its operand elsewhere (token_shift, last_row,
// broadcasting) just calls the operand at that index; the driver's compiler inlines the calls.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backends/vulkan/device.h"
#include "backends/vulkan/pipeline_store.h"
#include "ir/graph.h"

namespace rwkvc::vulkan {

// For other generators: a unary op as a GLSL expression of `x` (softplus calls
// softplus_log1p, defined by kSoftplusHelper), and a binary op's infix operator.
std::string unary_expression(OpKind kind);
std::string_view binary_operator(OpKind kind);
extern const std::string_view kSoftplusHelper;

// Whether the generator takes `kind` (one element of the result needs only elements of the
// operands, wherever they are).
bool is_generated_elementwise(OpKind kind);

struct ElementwiseGroup {
  std::vector<const Op*> ops;    // in order; each is_generated_elementwise
  std::vector<ValueId> inputs;   // read from buffers: the generated kernel's first bindings
  std::vector<ValueId> outputs;  // written to buffers (a value may appear twice), after the inputs
};

// Bindings: inputs, then outputs. Push: count (the largest output's element count), T.
// Grid: elementwise_groups(count). `types` gives the values' types by id (T unbound).
// Throws IrError for an op the generator does not take or a value nothing defines.
KernelSource elementwise_kernel(const DeviceFeatures& features, std::span<const TensorType> types,
                                const ElementwiseGroup& group, std::string_view label);

// The same group as GLSL functions alone, `float v<id>(uint i)` for each value, input k read
// through `load_in<k>(i)`, which the host kernel defines: how a matmul folds its epilogue.
// With `prefix` the names become `<prefix>v<id>` and `load_<prefix>in<k>`, so two groups can
// share a kernel. With `uses_softplus` the softplus helper is not included; it tells whether
// the code needs kSoftplusHelper (a kernel with two groups defines it once).
std::string elementwise_functions(std::span<const TensorType> types, const ElementwiseGroup& group,
                                  bool* uses_softplus = nullptr, const std::string& prefix = {});

}  // namespace rwkvc::vulkan
