// gemv_batch.cpp: one dispatch for a decode level's row GEMVs that all read outputs of the same
// layer norm + token_shift_mix (RWKV-7's r, k, v and LoRA downs): the workgroups are shared out
// over the members, each workgroup normalises the row once, mixes it with its member's mix into
// shared memory and runs R rows of its member's product. A level of several small products
// becomes one dispatch that streams all their weights, with one ramp and one tail.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backends/vulkan/shaders/templates.h"

namespace rwkvc::vulkan {

// A product of the batch: out = epilogue(mix output `input` B^T), B [n, C].
struct GemvBatchMember {
  GemvShape shape;  // B's dtype; transpose_b; wide (C a multiple of 8: 16-byte loads)
  Epilogue epilogue;
  std::size_t input = 0;     // which output of the mix it multiplies
  std::uint32_t n = 0;       // rows of B (outputs)
  std::uint32_t rows = 0;    // R: rows a workgroup runs at a time
  std::uint32_t groups = 0;  // its workgroups (a grid-stride loop covers n > groups * rows)
};

// Bindings: x, weight, bias, nm_in1.. (the mix's inputs), then for each member B and its
// epilogue's inputs, then each member's out, then last<k> for each [C] output k of the mix when
// `stores_last_rows` (workgroup 0 writes them: the new shift state). No push constants.
// Grid: the members' groups summed. Every member has the same `wide` (K = C for all).
// With `prefetch` (wide only), each subgroup loads its first row's weights before the norm,
// which does not need them.
KernelSource gemv_norm_mix_batch_kernel(const DeviceFeatures& features, const NormMixShape& mix, bool mix_softplus,
                                        const std::vector<GemvBatchMember>& members, bool stores_last_rows,
                                        bool prefetch);
// The kernel's binding count (a device binds at most features.max_storage_buffers).
std::size_t gemv_norm_mix_batch_bindings(const NormMixShape& mix, const std::vector<GemvBatchMember>& members,
                                         bool stores_last_rows);

// GLSL: the mixed row in shared memory (set_a, and load8_a when `wide`, else load_a), mean_cur and
// inv_cur, and load_nm_in0 (the normalised row, the mix's first input); the folded GEMV kernels
// share it.
std::string norm_mix_row_declarations(bool wide);
// GLSL: the layer norm statistics of row 0 of x (C values, ITEMS per invocation kept in
// xs[]) into mean_cur and inv_cur; the folded GEMV kernels share it.
std::string norm_mix_row_statistics();

// RWKVC_VULKAN_GEMV's batch_prefetch (0 or 1, default 0): the batch kernel's `prefetch`.
bool gemv_batch_prefetch();

}  // namespace rwkvc::vulkan
