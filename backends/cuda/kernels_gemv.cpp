#include "backends/cuda/kernel_sources.h"

namespace rwkvc::cuda {

// Decode reads every weight once per token: the loads are 16 bytes a lane, up to eight in flight
// per lane, and bypass L1 (a weight is used once); x is small and re-read by every warp, so it stays
// cached. Accumulation is f32; each warp reduces its row with shuffles.
const char* const kGemvSource = R"CUDA(
// The batched and epilogue GEMVs' entry points: blocks of 256 threads (8 rows). Their 80-96
// registers a thread leave room for two blocks an SM; RWKVC_CUDA_GEMV_MIN_BLOCKS=3 asks the
// compiler for three (tuning_defines()).
#ifndef GEMV_LAUNCH_BOUNDS
#define GEMV_LAUNCH_BOUNDS __launch_bounds__(256)
#endif
template <typename W> struct Pack;
template <> struct Pack<float> {
  enum { E = 4 };
  static __device__ __forceinline__ void unpack(uint4 p, float* f) {
    f[0] = __uint_as_float(p.x); f[1] = __uint_as_float(p.y); f[2] = __uint_as_float(p.z); f[3] = __uint_as_float(p.w);
  }
};
template <> struct Pack<f16> {
  enum { E = 8 };
  static __device__ __forceinline__ void unpack(uint4 p, float* f) {
    f[0] = half_bits_to_f32(p.x & 0xffffu); f[1] = half_bits_to_f32(p.x >> 16);
    f[2] = half_bits_to_f32(p.y & 0xffffu); f[3] = half_bits_to_f32(p.y >> 16);
    f[4] = half_bits_to_f32(p.z & 0xffffu); f[5] = half_bits_to_f32(p.z >> 16);
    f[6] = half_bits_to_f32(p.w & 0xffffu); f[7] = half_bits_to_f32(p.w >> 16);
  }
};
template <> struct Pack<bf16> {
  enum { E = 8 };
  static __device__ __forceinline__ void unpack(uint4 p, float* f) {
    f[0] = __uint_as_float(p.x << 16); f[1] = __uint_as_float(p.x & 0xffff0000u);
    f[2] = __uint_as_float(p.y << 16); f[3] = __uint_as_float(p.y & 0xffff0000u);
    f[4] = __uint_as_float(p.z << 16); f[5] = __uint_as_float(p.z & 0xffff0000u);
    f[6] = __uint_as_float(p.w << 16); f[7] = __uint_as_float(p.w & 0xffff0000u);
  }
};

__device__ __forceinline__ uint4 load_weights(const uint4* p) {
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
}

template <typename W, int M>
__device__ __forceinline__ void gemv_chunk(uint4 packed, const float* __restrict__ x, int K, int k0, float* acc) {
  float w[Pack<W>::E];
  Pack<W>::unpack(packed, w);
#pragma unroll
  for (int m = 0; m < M; ++m) {
    const float4* xv = reinterpret_cast<const float4*>(x + (i64)m * K + k0);
#pragma unroll
    for (int q = 0; q < Pack<W>::E / 4; ++q) {
      const float4 xx = xv[q];
      acc[m] = fmaf(w[4 * q], xx.x, acc[m]);
      acc[m] = fmaf(w[4 * q + 1], xx.y, acc[m]);
      acc[m] = fmaf(w[4 * q + 2], xx.z, acc[m]);
      acc[m] = fmaf(w[4 * q + 3], xx.w, acc[m]);
    }
  }
}

// The plain store; a generated epilogue (a matmul_epilogue region's tail) replaces it.
struct StoreRow {
  __device__ __forceinline__ void operator()(float* y, int N, int m, int n, float v) const { y[(i64)m * N + n] = v; }
};

// x as it is in memory. A decode GEMV may instead compute its x itself (a folded layer norm +
// token shift mix, decode_ln_fold.cpp): a prologue that every thread of the block calls once,
// after the wait, and that returns where x now is (shared memory).
struct GemvNoPrologue {
  __device__ __forceinline__ const float* operator()(const float* x) const { return x; }
};

// y[M, N] = x[M, K] W[N, K]^T; blockDim.x / 32 rows of W per block, block `row_block` of them
// here. VEC: K % E == 0 and x, W 16-byte aligned (each row of W then starts aligned too).
template <typename W, int M, bool VEC, typename Store, typename Prologue = GemvNoPrologue>
__device__ __forceinline__ void gemv_rows(const float* x_in, const W* __restrict__ w, float* y, int K, int N,
                                          Store store, int row_block, Prologue prologue = Prologue()) {
  const int row = row_block * (blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  kernel_release_early();
  if (row >= N) {
    kernel_wait();
    prologue(x_in);  // its barriers need every thread of the block
    return;
  }
  const W* wr = w + (i64)row * K;
  float acc[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.0f;
  if (VEC) {
    constexpr int E = Pack<W>::E;
    const uint4* w4 = reinterpret_cast<const uint4*>(wr);
    const int chunks = K / E;
    int c = lane;
    // Eight 16-byte loads in flight a lane (a 2048-wide f16 row in one go), then four, then one.
    // The first eight are weights: they load before the wait, while the previous kernel ends.
    uint4 p[8];
    const bool ahead = c + 224 < chunks;
    if (ahead) {
#pragma unroll
      for (int u = 0; u < 8; ++u) p[u] = load_weights(w4 + c + 32 * u);
    }
    kernel_wait();
    const float* __restrict__ x = prologue(x_in);
    if (ahead) {
      // Long rows (K = 8192): the next eight loads are issued before this eight's arithmetic,
      // so each lane always has loads in flight.
      for (; c + 256 + 224 < chunks; c += 256) {
        uint4 q[8];
#pragma unroll
        for (int u = 0; u < 8; ++u) q[u] = load_weights(w4 + c + 256 + 32 * u);
#pragma unroll
        for (int u = 0; u < 8; ++u) gemv_chunk<W, M>(p[u], x, K, (c + 32 * u) * E, acc);
#pragma unroll
        for (int u = 0; u < 8; ++u) p[u] = q[u];
      }
#pragma unroll
      for (int u = 0; u < 8; ++u) gemv_chunk<W, M>(p[u], x, K, (c + 32 * u) * E, acc);
      c += 256;
    }
    for (; c + 96 < chunks; c += 128) {
#pragma unroll
      for (int u = 0; u < 4; ++u) p[u] = load_weights(w4 + c + 32 * u);
#pragma unroll
      for (int u = 0; u < 4; ++u) gemv_chunk<W, M>(p[u], x, K, (c + 32 * u) * E, acc);
    }
    for (; c < chunks; c += 32) gemv_chunk<W, M>(load_weights(w4 + c), x, K, c * E, acc);
  } else {
    kernel_wait();
    const float* __restrict__ x = prologue(x_in);
    for (int k = lane; k < K; k += 32) {
      const float wv = to_f32(wr[k]);
#pragma unroll
      for (int m = 0; m < M; ++m) acc[m] = fmaf(wv, x[(i64)m * K + k], acc[m]);
    }
  }
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = warp_sum(acc[m]);
  if (lane == 0) {
#pragma unroll
    for (int m = 0; m < M; ++m) store(y, N, m, row, acc[m]);
  }
}

// Independent one-row GEMVs in one launch (decode's r, k, v; the LoRA downs; the LoRA ups):
// block b works for the last matrix whose first block is at most b. The generated entry point
// (cuda_matmul.cpp) calls gemv_rows for that member with its own store (a folded epilogue).
#define GEMV_BATCH 8
struct GemvBatch {
  const float* x[GEMV_BATCH];
  const void* w[GEMV_BATCH];
  float* y[GEMV_BATCH];
  int K[GEMV_BATCH];
  int N[GEMV_BATCH];
  int first_block[GEMV_BATCH];  // INT_MAX for unused entries
};
__device__ __forceinline__ int gemv_batch_member(const GemvBatch& batch) {
  int m = 0;
#pragma unroll
  for (int i = 1; i < GEMV_BATCH; ++i)
    if ((int)blockIdx.x >= batch.first_block[i]) m = i;
  return m;
}
)CUDA";

}  // namespace rwkvc::cuda
