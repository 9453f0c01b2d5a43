// An RWKV-7 `wkv` region as one kernel for short calls (decode): one workgroup per head, walking
// the tokens. Per token every invocation evaluates the region's ops for its channel in registers
// (the per-head reductions l2_norm, group_norm and reduce_sum become workgroup sums), runs the
// recurrence step on its part of its row of the state, and stores the region's outputs. With
// subgroup shuffles each row is split over 4 invocations (columns j = 4 jj + q, the row's sums
// closed with shuffles), so a head has 4 N invocations and a token's step is a chain of N / 4
// products; RWKVC_VULKAN_WKV_TOKEN_SPLIT picks 1 (one invocation per row), 2, 4 or 8;
// RWKVC_VULKAN_WKV_PREFETCH and RWKVC_VULKAN_WKV_UPS_AHEAD read the inputs and compute the
// folded LoRA ups (decode_folds.h) a token ahead. With the group norm fold
// (decode_group_norm_fold.h) the one-token kernel stops before the group norm, and
// RWKVC_VULKAN_WKV_GROUPS spreads a head's state rows over several workgroups. Long calls
// keep the op-by-op kernels, which spread the elementwise work over every token at once.
#pragma once

#include <map>
#include <optional>
#include <vector>

#include "backends/vulkan/program.h"

namespace rwkvc::vulkan {

// The one-token wkv kernel that leaves its group norm tail ((norm + bonus) * gate) to the output
// projection (decode_group_norm_fold.h): it stores three [C] vectors, the group norm's input, the
// bonus and the gate, in the place of the gated output (result `gated` of the region); the group
// norm's weight and bias are its inputs `weight_input` and `bias_input` (bound, not read).
struct WkvGroupNormSplit {
  KernelSource source;
  std::size_t gated = 0;
  std::size_t weight_input = 0, bias_input = 0;
  DType weight_dtype = DType::f32;
  double eps = 0;
  std::int64_t heads = 0, n = 0;
  // Workgroups of the kernel: a head's state rows over heads / workgroups of them
  // (RWKVC_VULKAN_WKV_GROUPS; each still computes all N channels' inputs). Push: T.
  std::uint32_t workgroups = 0;
  const DeviceFeatures* features = nullptr;
};
// That kernel for a wkv step's form with the ups `ups` folded in, or nothing when the region's
// tail has another form.
std::optional<WkvGroupNormSplit> group_norm_split(const WkvForm& form, const std::map<std::size_t, LoraUp>& ups);

// Calls of at most this many tokens run the fused kernel.
inline constexpr std::int64_t kFusedWkvMaxTokens = 64;

// The fused step for `op` (a region), or nothing when its body has another form (an op the
// generator does not take, a value that is not per channel or per head, no wkv7, buffers that
// alias). The step's `runs` is set to calls of at most kFusedWkvMaxTokens tokens.
std::optional<Step> fused_wkv_step(PipelineStore& pipelines, const DeviceFeatures& features, const Op& op,
                                   const std::vector<BufferRef>& operands, const std::vector<BufferRef>& results);

}  // namespace rwkvc::vulkan
