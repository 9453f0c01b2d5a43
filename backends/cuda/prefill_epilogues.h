// Epilogues inside the cuBLAS call in long calls (read when a program is built; on by default,
// RWKVC_CUDA_GEMM_EPILOGUES=0 turns them off). A matmul_epilogue region `y = x + a W^T` (the residual
// adds after the output and FFN value projections) runs in calls of more than kGemvMaxRows
// tokens as one cuBLASLt matmul D = A W^T + C with C = x, D = y and beta = 1: no f32 product
// in scratch and no tail kernel. cuBLASLt rather than cublasGemmEx, which needs C == D: a copy
// of x into y first would move as many bytes as the tail kernel it replaces, and writing over
// x's buffer would need the buffer planner to alias the two values; cuBLASLt reads x and writes
// y where they are (or the same buffer, if they ever share one).
//
// Precision: cuBLAS sums the products in f32 (CUBLAS_COMPUTE_32F) and adds beta * C = x to
// alpha * the sum in f32 before the one rounding of the store, the CPU's f32 add of the f32
// product to x. What may differ from the path without it is cuBLAS's choice of kernel (another
// summation order): f32 within 1e-4 relative of the CPU, as every cuBLAS product.
//
// The other tails keep their kernel: cuBLASLt's epilogues (RELU, GELU, BIAS and their aux/grad
// forms) match none of them (the -O2 graphs' other tails are tanh and sigmoid of LoRA downs and
// relu^2 of the FFN key; the LoRA biases w0/a0/v0 are added inside the wkv region). The LoRA
// tails are [T, D] with D <= 128: a launch each, hardly any bytes. relu^2 of [T, F] (F = 4C):
// today cuBLAS stores the f32 product and one tail kernel stores relu^2 in 16 bits (10 TF bytes
// a layer). The RELU epilogue with a 16-bit D would still need a squaring pass (6 TF bytes:
// about 1 ms less at 1.5B, 4096 tokens), but k would be rounded before it is squared, three
// roundings where the CPU contract has one. Squaring in the consumer's load is not open while
// the consumer is cuBLAS (it reads A as stored): that needs a GEMM of our own. So the fused tail
// stays.
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include "backends/cuda/cuda_program.h"
#include "ir/graph.h"

namespace rwkvc::cuda {

bool gemm_epilogues_enabled();

// Operand positions (in the region op, equal to its body's argument numbers) of `y = x + a W^T`.
struct ResidualEpilogue {
  std::size_t a = 0, weight = 0, residual = 0;
};

// The residual form of `op`: a matmul_epilogue region whose body is a matmul of a [T, K]
// argument by a weight argument (`is_weight` by graph ValueId), then the product added to an f32
// argument of the product's [T, N] shape, that sum the one yield. Null otherwise.
std::optional<ResidualEpilogue> match_residual_epilogue(const Op& op, const std::vector<bool>& is_weight);

// cuBLASLt's workspace: a reserved scratch buffer (Program::reserved_scratch) of that name.
inline constexpr const char* kLtWorkspaceName = "cublaslt workspace";
inline constexpr std::size_t kLtWorkspaceBytes = std::size_t{32} << 20;

// The long-call step of a region with the residual form: a 16-bit copy of a first when the
// weights are 16-bit and a is held in f32 (prefill_half.h), then the one cuBLASLt call;
// `fallback` (the matmul and its tail kernel) runs where cuBLASLt offers no algorithm or a
// pointer is not 16-byte aligned. Null when the switch is off, `op` has not the form, or y is
// held in 16 bits in long calls (no residual form for a 16-bit store).
std::optional<Step> residual_gemm_step(const Op& op, const std::vector<bool>& is_weight, Step fallback,
                                       Program& program);

}  // namespace rwkvc::cuda
