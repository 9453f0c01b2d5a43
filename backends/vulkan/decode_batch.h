// The batch fold (RWKVC_VULKAN_FOLDS=...,batch): the row GEMVs that read outputs of one layer
// norm + token_shift_mix (RWKV-7's r, k, v and LoRA downs, a level of independent products)
// become one dispatch for one-token calls (gemv_norm_mix_batch_kernel) instead of a folded GEMV
// each: one ramp and one tail for the level's ~26 MB at 1.5B instead of seven.
#pragma once

#include <vector>

#include "backends/vulkan/program.h"

namespace rwkvc::vulkan {

// A row GEMV reading output `output` of a mix as its whole input row.
struct MixReader {
  std::size_t step = 0;
  std::size_t output = 0;
};

// The steps (several only where the device binds too few buffers for one) that replace the
// folded GEMVs of the mix `mix_index` and its `readers` for one-token calls, to be placed before
// the first reader; none when the readers cannot be batched: fewer than two, a reader that does
// not run for every call, an epilogue input written after the first reader, or a device without
// what the folded GEMV needs.
std::vector<Step> batched_folded_gemvs(const Program& program, std::size_t mix_index, const std::vector<MixReader>& readers,
                                       PipelineStore& pipelines, const DeviceFeatures& features);

}  // namespace rwkvc::vulkan
