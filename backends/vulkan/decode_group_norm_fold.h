// The group norm + gate fold for one-token calls (RWKVC_VULKAN_FOLDS=...,group_norm; off by
// default, not yet timed): the one-kernel wkv step stores the group norm's input, the bonus and
// the gate, and the output projection that reads the gated output recomputes the group norm per
// head in its prologue (shaders/gemv_group_norm.h). The wkv kernel then ends at the recurrence:
// the first step towards spreading a head's rows over several workgroups.
#pragma once

#include <map>
#include <utility>
#include <vector>

#include "backends/vulkan/program.h"

namespace rwkvc::vulkan {

// For each (wkv step index, the ups now folded into it) whose region has the tail and whose
// gated output only a row GEMV reads in one-token calls: a one-token wkv step and GEMV step are
// inserted before the originals, which keep the other calls. Needs the steps' WkvForm.
void fold_group_norm_into_outputs(Program& program, PipelineStore& pipelines,
                                  const std::vector<std::pair<std::size_t, std::map<std::size_t, LoraUp>>>& wkv_steps);

}  // namespace rwkvc::vulkan
