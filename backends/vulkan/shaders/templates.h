// The hand-written kernel templates, one family per file, specialised by shape, dtype and the
// device's features. Each returns the GLSL and the binding count; the comments of each
// function give its bindings, push constants and launch grid, which the executable follows.
#pragma once

#include <cstdint>

#include "backends/vulkan/device.h"
#include "backends/vulkan/pipeline_store.h"
#include "ir/dtype.h"

namespace rwkvc::vulkan {

// gemv.cpp: out[m, n] = sum_k a[a_offset + m*K + k] * B(n, k) for a few rows m (decode).
// Bindings: a (f32), B (b_dtype), out (f32). Push: M, N, K, a_offset.
// transpose_b (B is [N, K]): a subgroup (or, without subgroup arithmetic, a workgroup) per
// output n, reading B's row with 16-byte loads when `wide` (K and a_offset multiples of 8).
// Grid: (gemv_groups(N), M). Otherwise (B is [K, N]): a thread per output n and k split in
// 4 slices; grid (ceil(N / 64), M).
struct GemvShape {
  DType b_dtype;
  bool transpose_b;
  bool wide;
};
KernelSource gemv_kernel(const DeviceFeatures& features, const GemvShape& shape);
std::uint32_t gemv_rows_per_group(const DeviceFeatures& features, bool transpose_b);

// gemm.cpp: out[M, N] = a[M, K] B^T (transpose_b) or a B, tiled 64 x 64 through shared memory,
// 4 x 4 outputs per thread. Bindings: a, B, out. Push: M, N, K. Grid (ceil(N/64), ceil(M/64)).
KernelSource gemm_kernel(const DeviceFeatures& features, DType b_dtype, bool transpose_b);

// wkv7.cpp: one workgroup per head, one invocation per row i of that head's N x N state, held
// in registers; per token the head's r, w, k, a, b go through shared memory.
// Bindings: r, w, k, v, a, b, state_in, y, state_out. Push: T. Grid (heads).
KernelSource wkv7_kernel(const DeviceFeatures& features, std::int64_t heads, std::int64_t head_size);

// wkv4.cpp: one invocation per channel, sequential over the tokens.
// Bindings: w, u, k, v, aa, bb, pp, y, aa_out, bb_out, pp_out. Push: T. Grid (ceil(C / 64)).
KernelSource wkv4_kernel(const DeviceFeatures& features, std::int64_t channels);

// norms.cpp: the ops that reduce contiguous segments of `width` elements, a workgroup per
// segment. Push: segments. Grid (min(segments, max groups)).
enum class SegmentOp { layer_norm, group_norm, l2_norm, reduce_sum };
struct SegmentShape {
  SegmentOp op;
  std::int64_t width;   // elements per segment
  std::int64_t groups;  // group_norm: segments per row (the affine weights span a row)
  double eps;
  DType weight_dtype = DType::f32;
};
// Bindings: x, then weight and bias (layer_norm, group_norm), then out.
KernelSource segment_kernel(const DeviceFeatures& features, const SegmentShape& shape);

// embedding.cpp: out[t, c] = table[tokens[t], c]. Bindings: table, tokens (i32), out.
// Push: count (T * C). Grid: elementwise_groups(count).
KernelSource embedding_kernel(const DeviceFeatures& features, DType table_dtype, std::int64_t columns);

// Invocations per group of the one-thread-per-element kernels (embedding, generated code),
// and the groups that cover `count` elements (a grid-stride loop covers the rest).
inline constexpr std::uint32_t kElementwiseGroupSize = 256;
std::uint32_t elementwise_groups(const DeviceFeatures& features, std::uint64_t count);

}  // namespace rwkvc::vulkan
