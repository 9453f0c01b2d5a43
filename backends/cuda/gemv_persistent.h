// Decode: a batch of one-row GEMVs as one launch of only as many blocks as the device holds at
// once, each warp walking the batch's rows with the next row's weight loads in flight during the
// current row's arithmetic (kernels_gemv_persistent.cpp), so the weights stream without the
// pauses between waves of blocks that the block-per-8-rows batch has.
#pragma once

#include <vector>

#include "backends/cuda/cuda_matmul.h"
#include "backends/cuda/cuda_program.h"

namespace rwkvc::cuda {

// RWKVC_CUDA_GEMV_PERSISTENT=1 turns it on (read by each program build); off by default until
// timed. RWKVC_CUDA_GEMV_PERSISTENT_GRID=n caps the grid at n blocks (measurements; tests, so
// that each warp walks many rows of several members).
bool gemv_persistent_enabled();

// Whether the walking kernel serves this batch: none of its members computes its own x (a folded
// layer norm, decode_ln_fold.h); those keep the block-per-8-rows kernel.
bool gemv_persistent_takes(const std::vector<GemvMember>& members);

// The batch (at most kMatmulBatch members, one weight type) as one walking launch when it runs as
// one launch (gemv_group_is_one_launch), else each member on its own. A single member is a batch
// of one (the FFN key and value GEMVs).
Step gemv_persistent_step(const std::vector<GemvMember>& members, Program& program);

}  // namespace rwkvc::cuda
