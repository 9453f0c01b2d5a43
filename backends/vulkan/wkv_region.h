// An RWKV-7 `wkv` region as one kernel for short calls (decode): one workgroup per head, walking
// the tokens. Per token every invocation evaluates the region's ops for its channel in registers
// (the per-head reductions l2_norm, group_norm and reduce_sum become workgroup sums), runs the
// recurrence step on its part of its row of the state, and stores the region's outputs. With
// subgroup shuffles each row is split over 4 invocations (columns j = 4 jj + q, the row's sums
// closed with shuffles), so a head has 4 N invocations and a token's step is a chain of N / 4
// products; RWKVC_VULKAN_WKV_TOKEN_SPLIT picks 1 (one invocation per row), 2, 4 or 8;
// RWKVC_VULKAN_WKV_PREFETCH and RWKVC_VULKAN_WKV_UPS_AHEAD read the inputs and compute the
// folded LoRA ups (decode_folds.h) a token ahead. Long calls
// keep the op-by-op kernels, which spread the elementwise work over every token at once.
#pragma once

#include <optional>
#include <vector>

#include "backends/vulkan/program.h"

namespace rwkvc::vulkan {

// Calls of at most this many tokens run the fused kernel.
inline constexpr std::int64_t kFusedWkvMaxTokens = 64;

// The fused step for `op` (a region), or nothing when its body has another form (an op the
// generator does not take, a value that is not per channel or per head, no wkv7, buffers that
// alias). The step's `runs` is set to calls of at most kFusedWkvMaxTokens tokens.
std::optional<Step> fused_wkv_step(PipelineStore& pipelines, const DeviceFeatures& features, const Op& op,
                                   const std::vector<BufferRef>& operands, const std::vector<BufferRef>& results);

}  // namespace rwkvc::vulkan
