// Matmul steps: a GEMV kernel when the activation has few rows (decode, short chunks), cuBLAS
// otherwise (f16/bf16 weights: activations rounded to the weights' type, f32 accumulation), and
// a plain kernel when the matrix is itself computed at run time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "backends/cuda/cuda_program.h"
#include "ir/shape.h"

namespace rwkvc::cuda {

struct MatmulSpec {
  std::size_t a = 0, b = 0, out = 0;  // slots
  Shape a_shape;                      // [..., K]
  std::int64_t K = 0, N = 0;
  DType b_dtype = DType::f32;
  bool b_is_weight = false;  // then B is held as [N, K] (transposed at upload if the graph reads [K, N])
  bool transpose_b = true;   // the graph's layout of a computed B
  bool logits = false;       // the graph's logits: only the last row when the caller wants no more
};

// Rows up to this many go through the GEMV kernel.
inline constexpr std::int64_t kGemvMaxRows = 8;

Step matmul_step(const MatmulSpec& spec, Program& program);

// Independent matmuls (none reads another's result) with one K and weight type, at most 4: one
// launch when each has one row (decode), else each on its own.
inline constexpr std::size_t kMatmulBatch = 4;
Step batched_matmul_step(const std::vector<MatmulSpec>& specs, Program& program);

}  // namespace rwkvc::cuda
