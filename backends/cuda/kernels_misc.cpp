#include "backends/cuda/kernel_sources.h"

namespace rwkvc::cuda {

const char* const kMiscSource = R"CUDA(
// One block per row; two passes over the row (the variance without cancellation, as the CPU).
extern "C" __global__ void layer_norm_rows(const float* __restrict__ x, const float* __restrict__ weight,
                                           const float* __restrict__ bias, float* __restrict__ out, int C, float eps) {
  __shared__ float scratch[32];
  const float* row = x + (i64)blockIdx.x * C;
  float* dst = out + (i64)blockIdx.x * C;
  float sum = 0.0f;
  for (int c = threadIdx.x; c < C; c += blockDim.x) sum += row[c];
  const float mean = block_sum(sum, scratch) / (float)C;
  float squares = 0.0f;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    const float d = row[c] - mean;
    squares += d * d;
  }
  const float inv_std = 1.0f / sqrtf(block_sum(squares, scratch) / (float)C + eps);
  for (int c = threadIdx.x; c < C; c += blockDim.x) dst[c] = (row[c] - mean) * inv_std * weight[c] + bias[c];
}

template <typename W>
__device__ __forceinline__ void embedding_rows(const W* __restrict__ table, const int* __restrict__ tokens,
                                               float* __restrict__ out, i64 count, int C) {
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

// Activations rounded to the weights' 16-bit type, for cuBLAS (f32 accumulation there).
extern "C" __global__ void convert_to_f16(const float* __restrict__ x, u16* __restrict__ out, i64 count) {
  for (i64 e = blockIdx.x * (i64)blockDim.x + threadIdx.x; e < count; e += (i64)gridDim.x * blockDim.x)
    out[e] = f32_to_f16_bits(x[e]);
}
extern "C" __global__ void convert_to_bf16(const float* __restrict__ x, u16* __restrict__ out, i64 count) {
  for (i64 e = blockIdx.x * (i64)blockDim.x + threadIdx.x; e < count; e += (i64)gridDim.x * blockDim.x)
    out[e] = f32_to_bf16_bits(x[e]);
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
  const int s = blockIdx.y;
  for (int e = blockIdx.x * blockDim.x + threadIdx.x; e < copies.count[s]; e += gridDim.x * blockDim.x)
    copies.dst[s][e] = copies.src[s][e];
}

// out[M, N] = a[M, K] B, B [N, K] (transpose_b) or [K, N], f32; for operands the fast paths
// do not take (a matrix computed at run time). One thread per output.
extern "C" __global__ void matmul_plain(const float* __restrict__ a, const float* __restrict__ b,
                                        float* __restrict__ out, i64 M, int N, int K, int transpose_b) {
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
