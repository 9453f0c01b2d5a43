// The hand-written kernels: CUDA C++ templates kept as source text and compiled by NVRTC
// together with the generated ones. Each family is a file of its own (kernels_*.cpp); the
// `extern "C"` entry points that instantiate them are emitted by the program that needs them.
#pragma once

#include <string>

#include "ir/dtype.h"

namespace rwkvc::cuda {

// Types, f16/bf16 conversions (no CUDA headers needed), warp/block reductions, and
// kernel_entry(), which every kernel calls first (programmatic dependent launch).
extern const char* const kPreludeSource;
// gemv_rows<W, M, VEC>: y[M, N] = x[M, K] W[N, K]^T, one warp per row of W; GemvBatch for
// several one-row GEMVs in one launch.
extern const char* const kGemvSource;
// gemv_walk_rows<W>: a batch of one-row GEMVs walked row by row by resident warps, the next
// row's weights loading during this row's arithmetic (needs kGemvSource ahead of it).
extern const char* const kGemvPersistentSource;
// gemv_staged_tiles<W>: a batch of one-row GEMVs in tiles of rows that each block copies into a
// ring in shared memory (bulk copies on mbarriers) before its wait (needs kGemvSource ahead of it).
extern const char* const kGemvStagedSource;
// wkv7_heads<N, L, R> (long prompts), wkv7_warp_rows<N> (short calls), wkv7_head_one_token<N>
// (inside a fused one-token wkv region), wkv4_channels: the recurrences, state updated in place.
extern const char* const kWkvSource;
// wkv7c_prepare<N, L, THREADS> (a record per chunk and head), wkv7c_rows<N, L, R, RT> (the row
// work), wkv7c_fused (both in one launch): WKV7 for long prompts, L tokens at a time as small
// matrix products (kernels_wkv7_chunked.cpp).
extern const char* const kWkv7ChunkedSource;
// layer_norm rows, embedding gathers, activation conversion for cuBLAS, state write-back copies,
// and a plain matmul for operands the fast paths do not take.
extern const char* const kMiscSource;

// Defines that switch decode tunings off for measurements (RWKVC_CUDA_EARLY_RELEASE=0),
// placed ahead of the prelude; empty by default.
std::string tuning_defines();

// The CUDA type name of a weight dtype in these sources: "float", "f16", "bf16".
std::string device_type(DType dtype);

}  // namespace rwkvc::cuda
