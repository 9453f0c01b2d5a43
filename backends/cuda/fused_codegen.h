// Generated kernels: a set of values computed from already materialised ones by evaluating
// the ops that define them inline, one thread per element of the largest output (broadcasting
// by shape). It covers elementwise ops, lerp, token_shift, last_row, reshape, constants and the
// small reductions (reduce_sum, l2_norm, group_norm, layer_norm, each thread summing its group,
// unless a block per row or head reduces it once), which is what kernel regions hold besides
// matmuls and recurrences.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace rwkvc::cuda {

// Ops a generated kernel can evaluate inline.
bool is_generatable(OpKind kind);

// A scope's values: their types and, for each, the op that defines it (null for leaves).
struct CodegenScope {
  std::span<const TensorType> types;
  std::vector<const Op*> producer;  // by ValueId
  // By ValueId, the type an output is stored in: f16/bf16 for a value only 16-bit matmuls read
  // in a long call (prefill_half.h); empty or f32: float.
  std::vector<DType> store_as = {};
};

struct FusedKernel {
  std::string name;    // "fused_" + a hash of the body: identical bodies share one kernel
  std::string source;  // extern "C" __global__ void name(i64 T, float* out..., const float* in...)
  std::vector<ValueId> outputs;
  std::vector<std::size_t> output_positions;  // of each output in the list asked for
  std::vector<ValueId> inputs;  // materialised values read, in parameter order
  Shape domain;                 // one thread per element (T bound at launch)
  bool block_per_row = false;   // else: a block per row of the [rows, C] domain, its threads over C
};

// Kernels that compute `outputs`, one per group of outputs that broadcast to a common shape.
// `materialized[id]`: the value is in memory (an input); any other value is computed from its
// producer. Throws IrError for a value that is neither, or an op no kernel can evaluate inline.
std::vector<FusedKernel> generate_fused(const CodegenScope& scope, std::span<const ValueId> outputs,
                                        const std::vector<bool>& materialized);

// A kernel that runs one token with a block per head of `width` channels (of `heads`), whose
// every reduction is over its block's head (the caller checks): such sums are block-reduced
// once, in a prologue all threads run, instead of re-summed element by element by each of the
// head's elements (a chain of `width` dependent loads per thread).
struct HeadBlock {
  Dim heads = 0, width = 0;
  std::string head;  // the name of the block's head index (an int the caller declares)
  std::string row = "0";  // the token's row: "0" (one token), or a variable the caller declares
};

// The statements that store each of `outputs` at the point d0, d1, ... of `domain` (variables
// the caller declares), through pointers `prefix`out0... and reading `prefix`in0... (the
// materialised `inputs`, in that order): for kernels that lay out their own loops. With `head`,
// `prologue` holds the head's sums: every thread of the block runs it (it has barriers),
// before the loop over the elements. With `row_statistics`, a layer_norm of a materialised
// [rows, C] value at row d0 (a block per row) reads statistics that `prologue` block-reduces.
struct ElementCode {
  std::string prologue;
  std::string body;
  std::vector<ValueId> inputs;
};
ElementCode generate_element_code(const CodegenScope& scope, std::span<const ValueId> outputs,
                                  const std::vector<bool>& materialized, const Shape& domain, const std::string& prefix,
                                  const std::optional<HeadBlock>& head = std::nullopt, bool row_statistics = false);

// A GEMV entry point for one row whose store evaluates `outputs` (a matmul_epilogue region's
// yields) from the accumulated product (`accumulator`, [1, N] or [N]) and the materialised
// inputs, so the tail needs no kernel of its own. Parameters: (const float* x, const W* w, int K,
// int N, i64 T, float* out..., const float* in...). Throws IrError when the tail reads the
// product at another element than the one being stored.
struct EpilogueKernel {
  std::string name;  // the entry point; its store is the aggregate `name + "_store"` {T, out..., in...}
  std::string source;
  std::vector<ValueId> inputs;
  std::size_t outputs = 0;
};
EpilogueKernel generate_gemv_epilogue(const CodegenScope& scope, std::span<const ValueId> outputs,
                                      const std::vector<bool>& materialized, ValueId accumulator,
                                      const std::string& weight_type);

}  // namespace rwkvc::cuda
