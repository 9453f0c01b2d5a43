#include "backends/cuda/prefill_wkv_prepare.h"

namespace rwkvc::cuda {

// What the fused pre-ops + prepare kernel (prefill_wkv_prepare.h) adds to kWkv7ChunkedSource,
// which must precede it: a sum over a group of N threads (each group of a block works on a token
// of its own, so a block-wide barrier would tie the groups together), a shared-memory row that
// takes the generated code's stores, and the record built from vectors already in shared memory.
const char* const kWkv7PrepareFusedSource = R"CUDA(
// The sum over the N threads of this thread's group (threads [g N, g N + N) of the block, N a
// multiple of 32); every thread of the group gets it. `scratch` holds a float per warp of the
// block. The group meets at named barrier 1 + g only. The warps' sums are added as block_sum
// adds them, so a group of a block-wide head (N threads a block) gets block_sum's result.
template <int N>
__device__ __forceinline__ float wkv7f_group_sum(float v, float* scratch) {
  v = warp_sum(v);
  if constexpr (N == 32) {
    return v;
  } else {
    const int group = threadIdx.x / N, lane = threadIdx.x & 31, first = group * (N / 32);
    asm volatile("bar.sync %0, %1;" ::"r"(1 + group), "r"(N) : "memory");  // scratch may still be read
    if (lane == 0) scratch[threadIdx.x >> 5] = v;
    asm volatile("bar.sync %0, %1;" ::"r"(1 + group), "r"(N) : "memory");
    return warp_sum(lane < N / 32 ? scratch[first + lane] : 0.0f);
  }
}

// One (token, head) row of a shared-memory vector, indexed as the [T, C] value it stands for:
// the generated code stores element d0 * C + h * N + c, which is row[c].
struct Wkv7fRow {
  float* row;
  i64 origin;
  __device__ __forceinline__ float& operator[](i64 i) const { return row[i - origin]; }
};

// The record of (chunk, head h) from r, w, k, a, b already in `sh` (tokens past T padded: w = 1,
// the others 0). This is wkv7c_prepare_record after its loads; the record is the one
// wkv7c_rows reads (Wkv7cLayout).
template <int N, int L, int THREADS>
__device__ __forceinline__ void wkv7f_record(Wkv7cPrepareShared<N, L>& sh, int chunk, int h, int H, int T, float* full,
                                             float* tail) {
  using Layout = Wkv7cLayout<N, L>;
  float* record = (chunk < T / L ? full : tail) + wkv7c_record_offset<N, L>(chunk, h, H, T);
  __syncthreads();
  // Cumulative log2 decays (clamped: differences of sums stay finite).
  for (int j = threadIdx.x; j < N; j += THREADS) {
    float sum = 0.0f;
#pragma unroll
    for (int t = 0; t < L; ++t) {
      sum += fmaxf(log2f(sh.w[t][j]), -100.0f);
      sh.c[t][j] = sum;
    }
    record[Layout::DECAY + j] = exp2f(sum);
  }
  __syncthreads();
  wkv7c_pairs<N, L, THREADS>(sh);
  // a and r scaled by the decay from the chunk's start, b and k by the decay to its end.
  for (int e = threadIdx.x; e < L * N; e += THREADS) {
    const int t = e / N, j = e % N;
    const float ct = sh.c[t][j], before = t > 0 ? sh.c[t - 1][j] : 0.0f, to_end = exp2f(sh.c[L - 1][j] - ct);
    record[Layout::SCALED_A + e] = sh.a[t][j] * exp2f(before);
    record[Layout::SCALED_R + e] = sh.r[t][j] * exp2f(ct);
    record[Layout::SCALED_B + e] = sh.b[t][j] * to_end;
    record[Layout::SCALED_K + e] = sh.k[t][j] * to_end;
  }
  __syncthreads();
  if (threadIdx.x < 32) wkv7c_solve<L>(sh.pair, sh.mix);
  __syncthreads();
  for (int e = threadIdx.x; e < 4 * L * L; e += THREADS) {
    const int m = e / (L * L), t = (e / L) % L, tau = e % L;
    record[Layout::W + m * L * L + t * L + 4 * wkv7c_swizzle<L>(t, tau / 4) + tau % 4] = sh.mix[m][t][tau];
  }
}
)CUDA";

}  // namespace rwkvc::cuda
