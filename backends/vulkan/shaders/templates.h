// The hand-written kernel templates, one family per file, specialised by shape, dtype and the
// device's features. Each returns the GLSL and the binding count; the comments of each
// function give its bindings, push constants and launch grid, which the executable follows.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backends/vulkan/device.h"
#include "backends/vulkan/pipeline_store.h"
#include "ir/dtype.h"

namespace rwkvc::vulkan {

class GlslBuilder;

// epilogue.cpp: an elementwise tail folded into a matmul's store (a matmul_epilogue region):
// the code generator's functions, where load_in0 is the product being stored and load_in<k>
// (k >= 1) reads binding in<k>. Empty `result`: none, the product is stored as it is.
struct Epilogue {
  std::string functions;      // elementwise_functions() of the tail
  std::string result;         // the function that gives the stored value, e.g. "v12"
  std::vector<DType> inputs;  // the dtypes of in1, in2, ...
  bool empty() const { return result.empty(); }
};
// Declares the epilogue's input buffers (the next bindings) and `float epilogue(uint i,
// float product)`, the value stored at flat index i. Its code may read pc.T.
void declare_epilogue(GlslBuilder& shader, const Epilogue& epilogue);

// gemv.cpp: out[m, n] = sum_k a[a_offset + m*K + k] * B(n, k) for a few rows m (decode).
// Bindings: a (f32), B (b_dtype), the epilogue's inputs, out (f32). Push: M, N, K, a_offset, T.
// transpose_b (B is [N, K]): a subgroup (or, without subgroup arithmetic, a workgroup) per
// output n, reading B's row with 16-byte loads when `wide` (K and a_offset multiples of 8).
// Grid: (gemv_groups(N), M). Otherwise (B is [K, N]): a thread per output n and k split in
// 4 slices; grid (ceil(N / 64), M).
struct GemvShape {
  DType b_dtype;
  bool transpose_b;
  bool wide;
};
// The row GEMVs' tuning (gemv.cpp), from RWKVC_VULKAN_GEMV when a graph is planned:
// comma-separated key=value, e.g. "unroll=16,fold_prefetch=1". unroll: 16-byte loads of a row
// in flight per invocation (1..16); rows: subgroups (output rows at a time) per workgroup of
// the plain GEMV (1..16); fold_subgroups: per workgroup of the GEMV with the norm + mix folded
// in (1..16); fold_groups: about how many workgroups a folded product gets (each recomputes the
// norm); fold_prefetch (0|1): each subgroup of a folded GEMV loads its first row's weights
// before the norm, so their latency overlaps it. Bad input throws std::invalid_argument.
struct GemvTuning {
  std::uint32_t unroll = 8;
  std::uint32_t rows = 4;
  std::uint32_t fold_subgroups = 8;
  std::uint32_t fold_groups = 256;
  bool fold_prefetch = false;
};
GemvTuning gemv_tuning();
KernelSource gemv_kernel(const DeviceFeatures& features, const GemvShape& shape, const Epilogue& epilogue = {});
std::uint32_t gemv_rows_per_group(const DeviceFeatures& features, bool transpose_b);

// gemv.cpp: one token's row GEMV (B [N, K], K = C) whose input row is output `input` of a layer
// norm + token_shift_mix (norm_mix_kernel's shape, with functions prefixed "nm_"): every
// workgroup recomputes the row's statistics and the mixed row into shared memory, then runs R
// rows of the product. With stores_last_rows, workgroup 0 also writes the mix's [C] outputs
// (the new shift state). Bindings: x, weight, bias, nm_in1.., B, the epilogue's inputs, out,
// then last<k> for each [C] output k. Push: M (1), N, K, a_offset (0), T (1), R.
// Grid: ceil(N / R). gemv_norm_mix_fits: whether the device takes it for rows of `width`.
bool gemv_norm_mix_fits(const DeviceFeatures& features, std::int64_t width);
std::uint32_t gemv_norm_mix_rows(const DeviceFeatures& features, std::int64_t n);
struct NormMixShape;
// With `chain`, the product's rows (after the epilogue) are not stored but multiplied on by a
// second matrix: workgroup g keeps its R rows' values in shared memory and writes
// partials[g * outputs + o] = sum over its rows n of value(n) * VT[n, o], VT ([N, outputs],
// dtype) the transpose of the second product's [outputs, N] matrix, read a row at a time;
// gemv_chain_sum_kernel adds the partials up. Bindings then: ..., B, the epilogue's inputs,
// VT, partials, last<k>. The grid must be exactly ceil(N / R) workgroups (R = rows, fixed).
struct GemvChain {
  DType dtype = DType::f32;
  std::int64_t outputs = 0;
  std::uint32_t rows = 0;
};
KernelSource gemv_norm_mix_kernel(const DeviceFeatures& features, const GemvShape& shape, const Epilogue& epilogue,
                                  const NormMixShape& mix, bool mix_softplus, std::size_t input, bool stores_last_rows,
                                  const GemvChain* chain = nullptr);
// gemv.cpp: out[o] = epilogue(o, sum over g < G of partials[g * N + o]), the second product of
// a chained GEMV. Bindings: partials, the epilogue's inputs, out. Push: N, G.
// Grid: ceil(N / gemv_chain_sum_columns()).
KernelSource gemv_chain_sum_kernel(const DeviceFeatures& features, const Epilogue& epilogue);
std::uint32_t gemv_chain_sum_columns();

// state_copy.cpp: dst_k[i] = src_k[i] for i < lengths[k], every slot k in one kernel.
// Bindings: src0..src{n-1}, then dst0..dst{n-1} (f32). No push constants.
// Grid (state_copy_groups(lengths), n): workgroup row y copies slot y.
KernelSource state_copy_kernel(const DeviceFeatures& features, const std::vector<std::int64_t>& lengths);
std::uint32_t state_copy_groups(const std::vector<std::int64_t>& lengths);

// gemm.cpp: out[M, N] = a[M, K] B^T (transpose_b) or a B, tiled `tile` x `tile` (64 or 128)
// through shared memory, (tile / 16)^2 outputs per thread. Bindings: a, B, the epilogue's
// inputs, out. Push: M, N, K, T. Grid (ceil(N / tile), ceil(M / tile)). gemm_tile: the tile
// for an M x N product.
KernelSource gemm_kernel(const DeviceFeatures& features, DType b_dtype, bool transpose_b, const Epilogue& epilogue,
                         std::uint32_t tile);
std::uint32_t gemm_tile(std::int64_t m, std::int64_t n);

// gemm_coopmat.cpp: the same product on cooperative matrices (f16 B [N, K] only, K a multiple
// of 8; features.cooperative_matrix): 64 x 64 tiles, activations split into two f16 parts.
// Bindings: a, B, the epilogue's inputs, out. Push: M, N, K, T. Grid (ceil(N / 64), ceil(M / 64)).
bool gemm_coopmat_takes(const DeviceFeatures& features, DType b_dtype, bool transpose_b, std::int64_t k);
std::uint32_t gemm_coopmat_tile();
KernelSource gemm_coopmat_kernel(const DeviceFeatures& features, const Epilogue& epilogue);

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

// norm_mix.cpp: a token_shift_mix region led by its layer_norm of x [T, C]. `functions` is the
// generated body, its input 0 the normalised value, load_in<k> (k >= 1) binding in<k>.
// Bindings: x, weight, bias, in1.., out0... Push: T.
// Grid (ceil(C / norm_mix_lanes(C)), min(T, 65535)): a block of channels of a row per workgroup.
struct NormMixShape {
  std::int64_t width;  // C
  double eps;
  DType weight_dtype;
  std::string functions;
  std::vector<DType> inputs;         // in1, in2, ...: vectors that do not vary with t
  std::vector<std::string> outputs;  // the function giving each output
  std::vector<bool> per_row;         // [T, C] output (else [C], written from the last row)
};
KernelSource norm_mix_kernel(const DeviceFeatures& features, const NormMixShape& shape);
std::uint32_t norm_mix_lanes(std::int64_t width);

// embedding.cpp: out[t, c] = table[tokens[t], c]. Bindings: table, tokens (i32), out.
// Push: count (T * C). Grid: elementwise_groups(count).
KernelSource embedding_kernel(const DeviceFeatures& features, DType table_dtype, std::int64_t columns);

// Invocations per group of the one-thread-per-element kernels (embedding, generated code),
// and the groups that cover `count` elements (a grid-stride loop covers the rest).
inline constexpr std::uint32_t kElementwiseGroupSize = 256;
std::uint32_t elementwise_groups(const DeviceFeatures& features, std::uint64_t count);

}  // namespace rwkvc::vulkan
