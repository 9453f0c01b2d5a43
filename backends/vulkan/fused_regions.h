// Regions the Vulkan backend runs as one hand-shaped kernel instead of op by op: a
// matmul_epilogue whose tail is folded into the matmul's store, and a token_shift_mix that
// starts with the layer norm feeding it (one workgroup per row normalises rows t and t-1 and
// writes every mixed output).
#pragma once

#include <vector>

#include "backends/vulkan/program.h"

namespace rwkvc::vulkan {

// Appends the region's steps and returns true when it has such a form; otherwise appends
// nothing and returns false (the caller lowers the body op by op).
bool lower_fused_region(Program& program, PipelineStore& pipelines, const DeviceFeatures& features, const Op& op,
                        const std::vector<BufferRef>& operands, const std::vector<BufferRef>& results);

}  // namespace rwkvc::vulkan
