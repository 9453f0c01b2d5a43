// The output projection of a one-token RWKV-7 time mix with the wkv kernel's group norm tail as
// its prologue (RWKVC_VULKAN_FOLDS=...,group_norm; decode_group_norm_fold.h): each workgroup
// normalises the wkv output per head (a subgroup per head), adds the bonus, multiplies by the
// gate into shared memory, then runs its rows of the product as the folded GEMVs do. The wkv
// kernel then ends at the recurrence, so its per-head reductions leave it.
#pragma once

#include <cstdint>

#include "backends/vulkan/shaders/templates.h"

namespace rwkvc::vulkan {

struct GroupNormPrologue {
  std::int64_t heads = 0, head_size = 0;
  double eps = 0;
  DType weight_dtype = DType::f32;  // of the group norm's weight and bias
};

// Bindings: y, bonus, gate ([C] f32 each), weight, bias ([C]), B ([N, C], b_dtype; 16-byte loads
// when `wide`), the epilogue's inputs, out. Push: M, N, K (= C), a_offset, T, R (rows a
// workgroup runs at a time; a grid-stride loop covers the rest). Needs subgroup arithmetic.
KernelSource gemv_group_norm_kernel(const DeviceFeatures& features, const GemvShape& shape, const Epilogue& epilogue,
                                    const GroupNormPrologue& prologue);

}  // namespace rwkvc::vulkan
