// The WKV7 step of any length: the chunked, parallel-in-time kernels (kernels_wkv7_chunked.cpp)
// for prompts, the sequential kernels of wkv7_step (cuda_steps.h) for short calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "backends/cuda/cuda_program.h"

namespace rwkvc::cuda {

// Calls of at least this many tokens take the chunked kernels by default: on the H100 (32 heads
// of 64) they are as fast as the sequential ones from 64 to 256 tokens and faster from 512 on
// (bench/results/h100-cuda/README.md, call 7).
inline constexpr std::int64_t kWkv7ChunkedDefaultFrom = 512;

// Calls of at least this many tokens take the chunked kernels where they apply (head sizes 32
// and 64, 16-byte aligned vectors and state): RWKVC_WKV7_CHUNKED_FROM=<tokens>, 0 for never,
// unset for kWkv7ChunkedDefaultFrom.
std::int64_t wkv7_chunked_from();

// r, w, k, v, a, b [T, H*N], state [H, N, N] -> y [T, H*N], state' (may be the same memory).
Step wkv7_any_length_step(Program& program, const std::vector<std::size_t>& operands,
                          const std::vector<std::size_t>& results, const Shape& sequence_shape, const Shape& state_shape);

}  // namespace rwkvc::cuda
