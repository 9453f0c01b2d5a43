// Long calls of an RWKV-7 wkv region in three launches: the pre-ops (decay, the normalised
// key, the value residual, ...) as one generated kernel with a block per (token, head), the
// recurrence, and the post-ops (group norm, bonus, gate) as another such kernel. The head-wide
// sums (the key's l2 norm, the group norm's statistics, the bonus) are block reductions done
// once per (token, head), where the region's other long-call form materialises their operands
// and runs a kernel per reduction. Taken for the head-wise form (wkv_region_form.h), as the
// one-token kernel is. RWKVC_CUDA_WKV_HEAD_BLOCKS=0 (read when a
// program is built) keeps the other form. With RWKVC_CUDA_WKV_FUSED_PREPARE=1, calls that take
// the split chunked WKV7 compute the pre-ops inside the kernel that writes the chunk records
// (prefill_wkv_prepare.h) instead.
#pragma once

#include <optional>

#include "backends/cuda/cuda_program.h"
#include "ir/graph.h"

namespace rwkvc::cuda {

// The step for calls of more than kGemvMaxRows tokens, or null when the region has no such form.
std::optional<Step> wkv7_long_call_step(const Op& op, Program& program);

}  // namespace rwkvc::cuda
