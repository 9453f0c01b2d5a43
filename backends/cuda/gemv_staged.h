// Decode: a batch of one-row GEMVs whose blocks copy tiles of their weight rows into shared memory
// (bulk asynchronous copies completing on mbarriers, kernels_gemv_staged.cpp) as soon as they are
// resident, before their wait, so the weights stream while the latency-bound kernel ahead of them
// (the one-token wkv, a layer-norm row) runs; then each block computes its tiles from shared
// memory and refills the ring with its next ones.
#pragma once

#include <cstdint>
#include <vector>

#include "backends/cuda/cuda_matmul.h"
#include "backends/cuda/cuda_program.h"

namespace rwkvc::cuda {

// RWKVC_CUDA_GEMV_STAGED=1 turns it on (read by each program build); off by default until timed.
bool gemv_staged_enabled();
// The head (logits) too, unless RWKVC_CUDA_GEMV_STAGED_HEAD=0.
bool gemv_staged_head_enabled();

// How the batch is cut and launched, from the environment (measurements; tests):
// RWKVC_CUDA_GEMV_STAGED_STAGES (ring slots a block, 1..8, default 4),
// RWKVC_CUDA_GEMV_STAGED_TILE_KB (a tile's bytes at most, default 16; a row longer than that is a
// tile of its own), RWKVC_CUDA_GEMV_STAGED_PER_SM (at most n blocks an SM, each walking its
// tiles through the ring; 0, the default: a block per `stages` tiles, each copied in at once),
// RWKVC_CUDA_GEMV_STAGED_GRID (at most n blocks in all; 0: no cap), RWKVC_CUDA_GEMV_STAGED_LANES
// (the lanes that may share a row: 32, the default, a warp a row; up to 256, long rows split
// over the block) and RWKVC_CUDA_GEMV_STAGED_COPY=threads (16-byte cp.async by every thread
// instead of one bulk copy a tile).
struct StagedShape {
  int stages = 4;
  std::int64_t tile_bytes = 16 * 1024;
  int per_sm = 0;
  int grid = 0;
  int max_lanes = 32;
  bool thread_copies = false;
};
StagedShape staged_shape_from_env();

// Whether the staged kernel serves this batch: none of its members computes its own x (a folded
// layer norm, decode_ln_fold.h: those keep the block-per-8-rows kernel) and each member's row fits
// a ring slot (at most the shared memory a block may have, divided by the stages).
bool gemv_staged_takes(const std::vector<GemvMember>& members);

// The batch (at most kMatmulBatch members, one weight type) as one staged launch when it runs as
// one launch (gemv_group_is_one_launch), else each member on its own. A single member is a batch
// of one (the output projection, the FFN key and value).
Step gemv_staged_step(const std::vector<GemvMember>& members, Program& program);

// A tile's rows for a member of row length K (elements of `dtype`) under `shape`: as many whole
// rows as the tile's bytes hold, at least one; rows split over more than a warp, at most what the
// kernel's threads accumulate (eight a row group).
int staged_tile_rows(std::int64_t K, DType dtype, const StagedShape& shape);

}  // namespace rwkvc::cuda
