// Folds for one-token calls (decode), where each level of dependent kernels costs a launch and
// a barrier more than the work it does: a layer norm + token_shift_mix step whose per-row
// outputs only row GEMVs read is folded into those GEMVs (each recomputes the normalised, mixed
// row in shared memory), which saves a level per mix; optionally, LoRA up products that only
// the one-kernel wkv step reads are computed inside it (a level and four launches a layer);
// optionally ("chain"), a folded GEMV that widens (the FFN key) also runs its only reader's
// share of the second product (the FFN value), whose partials a small kernel adds up;
// optionally ("batch", decode_batch.h), a mix's folded GEMVs are one dispatch; optionally
// ("group_norm", decode_group_norm_fold.h), the wkv kernel's group norm + bonus + gate runs in
// the output projection's prologue instead (one-token calls; run by fold_lora_ups_into_wkv). The
// original steps stay for the calls the folded ones do not take (T > 1; T > kFusedWkvMaxTokens).
#pragma once

#include "backends/vulkan/program.h"

namespace rwkvc::vulkan {

// Rewrites `program.steps` before scheduling. Steps of other forms are left as they are.
// RWKVC_VULKAN_FOLDS chooses them: "norm_mix,lora_up,batch" (the default), "norm_mix,lora_up",
// "norm_mix", "norm_mix,chain", "none" (the speed probe compares them).
void fold_norm_mix_into_gemvs(Program& program, PipelineStore& pipelines, const DeviceFeatures& features);
void fold_lora_ups_into_wkv(Program& program, PipelineStore& pipelines);

}  // namespace rwkvc::vulkan
