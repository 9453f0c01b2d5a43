#include "backends/cuda/kernel_sources.h"

namespace rwkvc::cuda {

// Decode's batched GEMVs hold two blocks an SM (80-96 registers a thread), so a batch of 800-1000
// blocks ran in waves, each one DRAM round trip with the memory pipe idle in between. Here the grid
// is what is resident and each warp walks the batch's rows, issuing the next row's weight loads
// before the current row's arithmetic: the loads stream from the first row to the last.
const char* const kGemvPersistentSource = R"CUDA(
// The rows of up to GEMV_BATCH one-row GEMVs, numbered one after the other: member i owns rows
// first_row[i] .. first_row[i] + N[i] - 1. Each member has its own x, W [N, K] and store.
struct GemvRowBatch {
  const float* x[GEMV_BATCH];
  const void* w[GEMV_BATCH];
  float* y[GEMV_BATCH];
  int K[GEMV_BATCH];
  int N[GEMV_BATCH];
  int first_row[GEMV_BATCH];  // INT_MAX for unused entries
  int rows;                   // every member's N, summed
};

// A warp's unit of work: 256 16-byte chunks (eight a lane) of one row of W; a row of more than
// 256 chunks (K > 2048 for f16) is several segments.
struct GemvSegment {
  int row;  // over the whole batch
  int segment;
};

__device__ __forceinline__ int gemv_row_member(const GemvRowBatch& batch, int row) {
  int m = 0;
#pragma unroll
  for (int i = 1; i < GEMV_BATCH; ++i)
    if (row >= batch.first_row[i]) m = i;
  return m;
}

// The segment's eight loads a lane (zeros past the row's end). Reads only weights.
template <typename W>
__device__ __forceinline__ void gemv_issue_segment(const GemvRowBatch& batch, GemvSegment s, uint4* p) {
  const int lane = threadIdx.x & 31;
  if (s.row >= batch.rows) return;
  const int m = gemv_row_member(batch, s.row);
  const int chunks = batch.K[m] / Pack<W>::E;
  const uint4* w4 = reinterpret_cast<const uint4*>(batch.w[m]) + (i64)(s.row - batch.first_row[m]) * chunks;
#pragma unroll
  for (int u = 0; u < 8; ++u) {
    const int c = s.segment * 256 + lane + 32 * u;
    p[u] = c < chunks ? load_weights(w4 + c) : make_uint4(0u, 0u, 0u, 0u);
  }
}

// y_m[n] = x_m . W_m[n] for every row of the batch, each row stored by store(m, n, value).
// Needs K % Pack<W>::E == 0 and x, W 16-byte aligned (as the batched gemv_rows with VEC).
template <typename W, typename Store>
__device__ __forceinline__ void gemv_walk_rows(const GemvRowBatch& batch, Store store) {
  constexpr int E = Pack<W>::E;
  const int lane = threadIdx.x & 31;
  const int warps = gridDim.x * (blockDim.x >> 5);
  kernel_release_early();
  // Neighbouring warps take neighbouring rows, so that at each step the grid reads one stretch of W.
  GemvSegment s{(int)blockIdx.x * (int)(blockDim.x >> 5) + (int)(threadIdx.x >> 5), 0};
  uint4 p[8];
  gemv_issue_segment<W>(batch, s, p);  // weights only: before the wait, while the previous kernel ends
  kernel_wait();
  float acc = 0.0f;
  while (s.row < batch.rows) {
    const int m = gemv_row_member(batch, s.row);
    const int K = batch.K[m], chunks = K / E;
    GemvSegment next{s.row, s.segment + 1};
    if (next.segment * 256 >= chunks) next = GemvSegment{s.row + warps, 0};
    // The next segment's loads go out before this one's arithmetic: always eight in flight a lane.
    uint4 q[8];
    gemv_issue_segment<W>(batch, next, q);
    const float* __restrict__ x = batch.x[m];
#pragma unroll
    for (int u = 0; u < 8; ++u) {
      const int c = s.segment * 256 + lane + 32 * u;
      if (c < chunks) gemv_chunk<W, 1>(p[u], x, K, c * E, &acc);
    }
    if (next.segment == 0) {
      acc = warp_sum(acc);
      if (lane == 0) store(m, s.row - batch.first_row[m], acc);
      acc = 0.0f;
    }
#pragma unroll
    for (int u = 0; u < 8; ++u) p[u] = q[u];
    s = next;
  }
}
)CUDA";

}  // namespace rwkvc::cuda
