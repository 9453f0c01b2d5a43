// The WKV7 step of any length: the chunked, parallel-in-time kernel (kernels_wkv7_chunked.cpp)
// for prompts, the sequential kernels of wkv7_step (cuda_steps.h) for short calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "backends/cuda/cuda_program.h"

namespace rwkvc::cuda {

// Calls of at least this many tokens take the chunked kernel where it applies (head sizes 32
// and 64, 16-byte aligned vectors and state), from RWKVC_WKV7_CHUNKED_FROM. Off (INT64_MAX)
// unless set: on the H100 the chunked kernel still takes twice the sequential one's time (1.5B,
// 4096 tokens: 35.7 ms against 17.4 ms; bench/results/h100-cuda/README.md, call 5).
std::int64_t wkv7_chunked_from();

// r, w, k, v, a, b [T, H*N], state [H, N, N] -> y [T, H*N], state' (may be the same memory).
Step wkv7_any_length_step(Program& program, const std::vector<std::size_t>& operands,
                          const std::vector<std::size_t>& results, const Shape& sequence_shape, const Shape& state_shape);

}  // namespace rwkvc::cuda
