// The WKV7 step of any length: the chunked, parallel-in-time kernels (kernels_wkv7_chunked.cpp)
// for prompts, the sequential kernels of wkv7_step (cuda_steps.h) for short calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
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

// Computes the recurrence's operands, in every call, just before it (the wkv region's pre-ops,
// prefill_wkv_region.cpp). Where the split chunked kernels run, it gets their record buffers
// (the full chunks', the last shorter chunk's) and writes every chunk's record itself, so the
// prepare kernel does not run (and r, w, k, a, b need not be in memory); otherwise both are null.
using Wkv7OperandsStep = std::function<void(RunContext& ctx, void* full_records, void* last_record)>;

// r, w, k, v, a, b [T, H*N], state [H, N, N] -> y [T, H*N], state' (may be the same memory).
Step wkv7_any_length_step(Program& program, const std::vector<std::size_t>& operands,
                          const std::vector<std::size_t>& results, const Shape& sequence_shape, const Shape& state_shape,
                          Wkv7OperandsStep operands_step = nullptr);

}  // namespace rwkvc::cuda
