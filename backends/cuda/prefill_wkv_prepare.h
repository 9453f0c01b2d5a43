// The wkv region's pre-ops and the chunked WKV7's prepare kernel as one kernel, in long calls
// that take the split chunked kernels (cuda_wkv7_prompt.h). The pre-ops kernel wrote r, w, k,
// a, b in f32 a block per (token, head) and the prepare kernel read them back a block per
// (chunk, head); here a block per (chunk of 16 tokens, head) computes the pre-ops (the region's
// generated code, a group of N threads a token) into shared memory and builds the chunk's
// record from there, so only what the row kernel and the post-ops read (v, the key) is stored.
// Shorter calls keep the pre-ops kernel. RWKVC_CUDA_WKV_FUSED_PREPARE=1 (read when a program is
// built) turns it on; off by default: at 1.5B it moves a third fewer bytes in the same time
// (backends/cuda/README.md). RWKVC_CUDA_WKV_FUSED_PREPARE_SHAPE=<threads>x<blocks an SM> sets the
// block (256x4 unless set; for measurements).
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "backends/cuda/cuda_program.h"
#include "backends/cuda/cuda_wkv7_prompt.h"
#include "backends/cuda/fused_codegen.h"
#include "ir/graph.h"

namespace rwkvc::cuda {

// The source family of the fused kernel (kernels_wkv7_prepare_fused.cpp); kWkv7ChunkedSource
// must precede it.
extern const char* const kWkv7PrepareFusedSource;

bool fused_prepare_enabled();

// Launches the fused kernel for a call of ctx.T tokens, writing every chunk record into
// `full_records` and `last_record` (as the prepare kernel would).
using Wkv7RecordsWriter = std::function<void(RunContext& ctx, void* full_records, void* last_record)>;

// The writer for `wkv`, a recurrence of H heads of N inside a region whose `scope` the code
// generator evaluates from the `materialized` values: r, w, k, a and b (its operands 0, 1, 2, 4,
// 5) go to shared memory only, the values of `stored` also to memory. `slot`: each value's slot
// (the materialised ones and `stored`). Null for head sizes other than 32 and 64, or when the
// generated pre-ops are not of the form a group of threads can run.
std::optional<Wkv7RecordsWriter> fused_prepare(Program& program, const CodegenScope& scope, const Op& wkv, Dim H, Dim N,
                                               std::span<const ValueId> stored, const std::vector<bool>& materialized,
                                               const std::vector<std::optional<std::size_t>>& slot);

}  // namespace rwkvc::cuda
