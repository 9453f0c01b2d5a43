// Decode: a token_shift_mix region (layer norm, token shift, mixes) whose yields the next GEMV
// batch reads is computed by that batch's blocks instead: each block reduces the row's
// layer-norm statistics itself (the row is 8-16 KB, from L2) and mixes its own member's x into
// shared memory, and block 0 also stores the yields read later (the new shift state). One
// launch and one dependency a region fewer; longer calls run the region as before.
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include "backends/cuda/cuda_matmul.h"
#include "backends/cuda/cuda_program.h"
#include "ir/graph.h"

namespace rwkvc::cuda {

// The region the program builder lowered last: its step and its op.
struct RecentRegion {
  std::size_t step = 0;
  std::size_t op = 0;
};

// RWKVC_CUDA_FOLD_LN=1 turns the fold on (read by each program build). Off by default: as
// first measured (bench/results/h100-cuda, call 6) 1.5B decode was 19% slower than with the
// region's own kernel: a block per 8 rows (the GEMVs hold two blocks an SM, so 3-4 waves, each
// recomputing the row) and block 0 storing all seven yields. Since then (not yet timed) a
// block works through kFoldedRowBlocks row blocks and stores only the yields read later.
bool ln_fold_enabled();
// Each block of a folded member works through this many blocks of 8 rows, so that the x it
// computes serves 8 * this rows and a batch fits in about one wave of blocks
// (RWKVC_CUDA_FOLD_LN_ROW_BLOCKS overrides it).
inline constexpr int kFoldedRowBlocks = 4;
int folded_row_blocks();

// `members` (of ops `ops`) are the first batch about to be pushed, run where op `last` stands.
// When `recent` is the step just before, a token_shift_mix region, and every member reads one of its
// yields as x (and nothing else of it), gives each member a prologue that computes its x, makes
// the region's step run only when the batch does not run as one launch, and keeps the region's
// operands live until the batch. Otherwise changes nothing.
void fold_row_prologues(const Graph& graph, std::optional<RecentRegion>& recent, const std::vector<GemvMember*>& members,
                        const std::vector<std::size_t>& ops, std::size_t last, Program& program);

}  // namespace rwkvc::cuda
