#include "backends/cuda/kernel_sources.h"

namespace rwkvc::cuda {

const char* const kMiscSource = R"CUDA(
// One block per row; the row is read once into registers (up to LN_CACHE elements a thread, the
// rest re-read), then two passes over it: the variance without cancellation, as the CPU.
#define LN_CACHE 8
extern "C" __global__ void layer_norm_rows(const float* __restrict__ x, const float* __restrict__ weight,
                                           const float* __restrict__ bias, float* __restrict__ out, int C, float eps) {
  kernel_entry();
  __shared__ float scratch[32];
  const float* row = x + (i64)blockIdx.x * C;
  float* dst = out + (i64)blockIdx.x * C;
  const int step = blockDim.x, beyond = LN_CACHE * blockDim.x;
  float cache[LN_CACHE];
  float sum = 0.0f;
#pragma unroll
  for (int q = 0; q < LN_CACHE; ++q) {
    const int c = threadIdx.x + q * step;
    cache[q] = c < C ? row[c] : 0.0f;
    sum += cache[q];
  }
  for (int c = threadIdx.x + beyond; c < C; c += step) sum += row[c];
  const float mean = block_sum(sum, scratch) / (float)C;
  float squares = 0.0f;
#pragma unroll
  for (int q = 0; q < LN_CACHE; ++q)
    if (threadIdx.x + q * step < C) squares += (cache[q] - mean) * (cache[q] - mean);
  for (int c = threadIdx.x + beyond; c < C; c += step) squares += (row[c] - mean) * (row[c] - mean);
  const float inv_std = 1.0f / sqrtf(block_sum(squares, scratch) / (float)C + eps);
#pragma unroll
  for (int q = 0; q < LN_CACHE; ++q) {
    const int c = threadIdx.x + q * step;
    if (c < C) dst[c] = (cache[q] - mean) * inv_std * weight[c] + bias[c];
  }
  for (int c = threadIdx.x + beyond; c < C; c += step) dst[c] = (row[c] - mean) * inv_std * weight[c] + bias[c];
}

// One warp per group of G contiguous elements (l2_norm, group_norm, reduce_sum over the last
// axis): lanes stride the group, shuffles sum it; two passes for the variance, as the CPU.
__device__ __forceinline__ i64 warp_group() { return (blockIdx.x * (i64)blockDim.x + threadIdx.x) >> 5; }

extern "C" __global__ void l2_norm_groups(const float* __restrict__ x, float* __restrict__ out, i64 groups, int G,
                                          float eps) {
  kernel_entry();
  const i64 g = warp_group();
  const int lane = threadIdx.x & 31;
  if (g >= groups) return;
  const float* src = x + g * G;
  float squares = 0.0f;
  for (int j = lane; j < G; j += 32) squares += src[j] * src[j];
  const float divisor = fmaxf(sqrtf(warp_sum(squares)), eps);
  for (int j = lane; j < G; j += 32) out[g * G + j] = src[j] / divisor;
}

extern "C" __global__ void group_norm_groups(const float* __restrict__ x, const float* __restrict__ weight,
                                             const float* __restrict__ bias, float* __restrict__ out, i64 groups, int G,
                                             int C, float eps) {
  kernel_entry();
  const i64 g = warp_group();
  const int lane = threadIdx.x & 31;
  if (g >= groups) return;
  const float* src = x + g * G;
  float sum = 0.0f;
  for (int j = lane; j < G; j += 32) sum += src[j];
  const float mean = warp_sum(sum) / (float)G;
  float squares = 0.0f;
  for (int j = lane; j < G; j += 32) squares += (src[j] - mean) * (src[j] - mean);
  const float inv_std = 1.0f / sqrtf(warp_sum(squares) / (float)G + eps);
  for (int j = lane; j < G; j += 32) {
    const int c = (int)((g * G + j) % C);
    out[g * G + j] = (src[j] - mean) * inv_std * weight[c] + bias[c];
  }
}

extern "C" __global__ void reduce_sum_groups(const float* __restrict__ x, float* __restrict__ out, i64 groups, int G) {
  kernel_entry();
  const i64 g = warp_group();
  const int lane = threadIdx.x & 31;
  if (g >= groups) return;
  float sum = 0.0f;
  for (int j = lane; j < G; j += 32) sum += x[g * G + j];
  sum = warp_sum(sum);
  if (lane == 0) out[g] = sum;
}

template <typename W>
__device__ __forceinline__ void embedding_rows(const W* __restrict__ table, const int* __restrict__ tokens,
                                               float* __restrict__ out, i64 count, int C) {
  kernel_entry();
  for (i64 e = blockIdx.x * (i64)blockDim.x + threadIdx.x; e < count; e += (i64)gridDim.x * blockDim.x) {
    const i64 t = e / C, c = e % C;
    out[e] = to_f32(table[(i64)tokens[t] * C + c]);
  }
}
extern "C" __global__ void embedding_float(const float* table, const int* tokens, float* out, i64 count, int C) {
  embedding_rows(table, tokens, out, count, C);
}
extern "C" __global__ void embedding_f16(const f16* table, const int* tokens, float* out, i64 count, int C) {
  embedding_rows(table, tokens, out, count, C);
}
extern "C" __global__ void embedding_bf16(const bf16* table, const int* tokens, float* out, i64 count, int C) {
  embedding_rows(table, tokens, out, count, C);
}

// Activations rounded to the weights' 16-bit type, for cuBLAS (f32 accumulation there); four
// at a time (the buffers are cudaMalloc'd, so 16-byte aligned).
template <u16 (*Round)(float)>
__device__ __forceinline__ void convert_rows(const float* __restrict__ x, u16* __restrict__ out, i64 count) {
  kernel_entry();
  const i64 first = blockIdx.x * (i64)blockDim.x + threadIdx.x, stride = (i64)gridDim.x * blockDim.x;
  const i64 quads = count / 4;
  for (i64 e = first; e < quads; e += stride) {
    const float4 f = reinterpret_cast<const float4*>(x)[e];
    uint2 packed;
    packed.x = (u32)Round(f.x) | ((u32)Round(f.y) << 16);
    packed.y = (u32)Round(f.z) | ((u32)Round(f.w) << 16);
    reinterpret_cast<uint2*>(out)[e] = packed;
  }
  for (i64 e = quads * 4 + first; e < count; e += stride) out[e] = Round(x[e]);
}
extern "C" __global__ void convert_to_f16(const float* x, u16* out, i64 count) {
  convert_rows<f32_to_f16_bits>(x, out, count);
}
extern "C" __global__ void convert_to_bf16(const float* x, u16* out, i64 count) {
  convert_rows<f32_to_bf16_bits>(x, out, count);
}

// The state slots a forward's last ops did not write in place, copied into the state in one
// launch: blockIdx.y picks the slot.
#define COPY_SLOTS 32
struct SlotCopies {
  const float* src[COPY_SLOTS];
  float* dst[COPY_SLOTS];
  int count[COPY_SLOTS];
};
extern "C" __global__ void copy_slots(SlotCopies copies) {
  kernel_entry();
  const int s = blockIdx.y;
  for (int e = blockIdx.x * blockDim.x + threadIdx.x; e < copies.count[s]; e += gridDim.x * blockDim.x)
    copies.dst[s][e] = copies.src[s][e];
}

// out[M, N] = a[M, K] B, B [N, K] (transpose_b) or [K, N], f32; for operands the fast paths
// do not take (a matrix computed at run time). One thread per output.
extern "C" __global__ void matmul_plain(const float* __restrict__ a, const float* __restrict__ b,
                                        float* __restrict__ out, i64 M, int N, int K, int transpose_b) {
  kernel_entry();
  for (i64 e = blockIdx.x * (i64)blockDim.x + threadIdx.x; e < M * N; e += (i64)gridDim.x * blockDim.x) {
    const i64 m = e / N;
    const int n = (int)(e % N);
    float acc = 0.0f;
    for (int k = 0; k < K; ++k) acc = fmaf(a[m * K + k], transpose_b ? b[(i64)n * K + k] : b[(i64)k * N + n], acc);
    out[e] = acc;
  }
}
)CUDA";

}  // namespace rwkvc::cuda
