#include "backends/cuda/kernel_sources.h"

namespace rwkvc::cuda {

// Decode's GEMVs read only weights before their wait, and weights never depend on the previous
// kernel: a block can ask the copy engine for several tiles of its rows at once (one bulk copy a
// tile into shared memory, completion counted in bytes on an mbarrier) as soon as it is resident,
// while the latency-bound kernel ahead of it (wkv, a layer norm) still runs. Registers would hold
// only eight 16-byte loads a lane; shared memory holds up to ~200 KB an SM.
const char* const kGemvStagedSource = R"CUDA(
// The rows of up to GEMV_BATCH one-row GEMVs, each member's cut into tiles of rows[m] rows (one
// contiguous stretch of its W [N, K]), numbered member after member. A block takes the tiles
// blockIdx.x, blockIdx.x + gridDim.x, ... through a ring of `stages` slots of stage_bytes each.
struct GemvTileBatch {
  const float* x[GEMV_BATCH];
  const void* w[GEMV_BATCH];
  float* y[GEMV_BATCH];
  int K[GEMV_BATCH];
  int N[GEMV_BATCH];
  int rows[GEMV_BATCH];        // a tile's rows (split rows: at most 8 * (256 / gemv_tile_lanes))
  int first_tile[GEMV_BATCH];  // INT_MAX for unused entries
  int tiles;
  int stages;                  // at most GEMV_STAGES_MAX
  int stage_bytes;             // a multiple of 128
  int max_lanes;               // lanes that share a row, at most (32: a warp a row)
  int thread_copies;           // 1: every thread copies 16-byte pieces (cp.async), else one bulk copy
};
#define GEMV_STAGES_MAX 8
// Bulk copies and their fences are sm_90's; before it every thread copies (cp.async, sm_80).
#if __CUDA_ARCH__ >= 900
#define GEMV_BULK_COPIES 1
#else
#define GEMV_BULK_COPIES 0
#endif
#define GEMV_STAGED_THREADS 256
#define GEMV_STAGED_WARPS (GEMV_STAGED_THREADS / 32)

__device__ __forceinline__ u32 staged_shared_address(const void* shared) {
  u32 address;
  asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(address) : "l"(shared));
  return address;
}

__device__ __forceinline__ void stage_barrier_arrive(u32 barrier) {
  asm volatile("{ .reg .b64 state; mbarrier.arrive.shared::cta.b64 state, [%0]; }" ::"r"(barrier) : "memory");
}

__device__ __forceinline__ void stage_barrier_wait(u32 barrier, u32 parity) {
  u32 done = 0;
  do {
#if __CUDA_ARCH__ >= 900
    asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                 : "=r"(done) : "r"(barrier), "r"(parity) : "memory");
#else
    asm volatile("{ .reg .pred p; mbarrier.test_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                 : "=r"(done) : "r"(barrier), "r"(parity) : "memory");
#endif
  } while (!done);
}

__device__ __forceinline__ int gemv_tile_member(const GemvTileBatch& batch, int tile) {
  int m = 0;
#pragma unroll
  for (int i = 1; i < GEMV_BATCH; ++i)
    if (tile >= batch.first_tile[i]) m = i;
  return m;
}

// Lanes that share a row: enough for its 16-byte chunks, from a warp up to max_lanes.
__device__ __forceinline__ int gemv_tile_lanes(int chunks, int max_lanes) {
  int lanes = 32;
  while (lanes < chunks && lanes < max_lanes) lanes <<= 1;
  return lanes;
}

// The tile's first row and row count. Reads only the batch.
__device__ __forceinline__ void gemv_tile_rows(const GemvTileBatch& batch, int m, int tile, int& n0, int& rows) {
  n0 = (tile - batch.first_tile[m]) * batch.rows[m];
  rows = min(batch.rows[m], batch.N[m] - n0);
}

// Tile `tile` of the batch into `slot`, completing `full`'s phase: one bulk copy by thread 0, or
// (thread_copies) 16-byte copies by every thread, each arriving once they have landed. Every
// thread calls it. Reads only weights.
template <typename W>
__device__ __forceinline__ void gemv_issue_tile(const GemvTileBatch& batch, int tile, u32 slot, u32 full) {
  const int m = gemv_tile_member(batch, tile);
  int n0, rows;
  gemv_tile_rows(batch, m, tile, n0, rows);
  const char* w = reinterpret_cast<const char*>(reinterpret_cast<const W*>(batch.w[m]) + (i64)n0 * batch.K[m]);
  const u32 bytes = (u32)(rows * batch.K[m] * (int)sizeof(W));
  if (batch.thread_copies || !GEMV_BULK_COPIES) {
    for (u32 at = threadIdx.x * 16u; at < bytes; at += GEMV_STAGED_THREADS * 16u)
      asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(slot + at), "l"(w + at) : "memory");
    asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];" ::"r"(full) : "memory");
  } else if (threadIdx.x == 0) {
#if GEMV_BULK_COPIES
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(full), "r"(bytes) : "memory");
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
                 ::"r"(slot), "l"(w), "r"(bytes), "r"(full) : "memory");
#endif
  }
}

// x . row for one row of W in shared memory, by one warp (every lane gets the sum).
template <typename W>
__device__ __forceinline__ float gemv_warp_row(const uint4* row, const float* __restrict__ x, int chunks) {
  constexpr int E = Pack<W>::E;
  const int lane = threadIdx.x & 31;
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  int c = lane;
  for (; c + 96 < chunks; c += 128) {
#pragma unroll
    for (int u = 0; u < 4; ++u) gemv_chunk<W, 1>(row[c + 32 * u], x, 0, (c + 32 * u) * E, &acc[u]);
  }
  for (; c < chunks; c += 32) gemv_chunk<W, 1>(row[c], x, 0, c * E, &acc[0]);
  return warp_sum((acc[0] + acc[1]) + (acc[2] + acc[3]));
}

// y_m[n] = x_m . W_m[n] for every row of the batch, stored by store(m, n, value). Needs
// K % Pack<W>::E == 0, x and W 16-byte aligned, blockDim.x == GEMV_STAGED_THREADS and
// stages * stage_bytes of dynamic shared memory.
//
// Rows of up to 32 chunks (max_lanes 32: all rows) are a warp's each: warp w takes rows w, w + 8,
// ... of the block's tiles in order, and no block barrier holds the warps together, so one warp's
// store (a folded epilogue's loads) does not stall the others.
// Longer rows with max_lanes > 32 are split over up to max_lanes lanes, the partial sums added
// through shared memory. A slot is refilled once every warp is done with it (an mbarrier the
// warps arrive on, waited for by thread 0; with thread_copies a block barrier, as every thread
// copies).
template <typename W, typename Store>
__device__ __forceinline__ void gemv_staged_tiles(const GemvTileBatch& batch, Store store) {
  constexpr int E = Pack<W>::E;
  extern __shared__ __align__(128) unsigned char gemv_stage[];
  __shared__ __align__(8) unsigned long long stage_full[GEMV_STAGES_MAX], stage_free[GEMV_STAGES_MAX];
  __shared__ float partial[GEMV_STAGED_WARPS][8];  // [warp][row of its lanes]
  kernel_release_early();
  const int stages = batch.stages;
  const bool thread_copies = batch.thread_copies || !GEMV_BULK_COPIES;
  const int first = blockIdx.x, step = gridDim.x;
  const u32 ring = staged_shared_address(gemv_stage), full = staged_shared_address(stage_full), empty = staged_shared_address(stage_free);
  if (threadIdx.x == 0) {
    for (int s = 0; s < stages; ++s) {
      asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(full + 8 * s),
                   "r"(thread_copies ? GEMV_STAGED_THREADS : 1) : "memory");
      asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(empty + 8 * s), "r"(GEMV_STAGED_WARPS) : "memory");
    }
#if GEMV_BULK_COPIES
    // The barriers' initialisation is seen by the copies (the async proxy) before any copy.
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
#endif
  }
  __syncthreads();  // the barriers are initialised before anyone arrives or waits
  // Weights only: they stream in while the previous kernel ends.
  for (int s = 0; s < stages && first + s * step < batch.tiles; ++s)
    gemv_issue_tile<W>(batch, first + s * step, ring + s * batch.stage_bytes, full + 8 * s);
  kernel_wait();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  int row_base = 0;  // the block's rows before this tile
  for (int k = 0;; ++k) {
    const int tile = first + k * step;
    if (tile >= batch.tiles) break;
    const int s = k % stages;
    const u32 parity = (u32)(k / stages) & 1u;
    const int m = gemv_tile_member(batch, tile);
    const int chunks = batch.K[m] / E;
    int n0, rows;
    gemv_tile_rows(batch, m, tile, n0, rows);
    const float* __restrict__ x = batch.x[m];
    const uint4* tile4 = reinterpret_cast<const uint4*>(gemv_stage + s * batch.stage_bytes);
    const int lanes = gemv_tile_lanes(chunks, batch.max_lanes);
    // Every warp waits for the tile, those without rows in it too: a warp arrives on the slot's
    // `empty` barrier only after its `full` phase, so no warp can arrive twice in one phase.
    stage_barrier_wait(full + 8 * s, parity);
    if (lanes == 32) {
      const int r0 = (warp - row_base % GEMV_STAGED_WARPS + GEMV_STAGED_WARPS) % GEMV_STAGED_WARPS;
      for (int r = r0; r < rows; r += GEMV_STAGED_WARPS) {
        const float v = gemv_warp_row<W>(tile4 + r * chunks, x, chunks);
        if (lane == 0) store(m, n0 + r, v);
      }
    } else {
      // Lanes j of row group g take chunks j, j + lanes, ... of rows g, g + groups, ...: a warp
      // reads 512 consecutive bytes of one row, and each x chunk serves up to eight rows.
      const int groups = GEMV_STAGED_THREADS / lanes;
      const int j = threadIdx.x & (lanes - 1), g = threadIdx.x / lanes;
      float acc[8];
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[i] = 0.0f;
      for (int c = j; c < chunks; c += lanes) {
        float xv[E];
#pragma unroll
        for (int q = 0; q < E / 4; ++q) {
          const float4 xx = reinterpret_cast<const float4*>(x + (i64)c * E)[q];
          xv[4 * q] = xx.x; xv[4 * q + 1] = xx.y; xv[4 * q + 2] = xx.z; xv[4 * q + 3] = xx.w;
        }
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          const int r = g + i * groups;
          if (r < rows) {
            float wv[E];
            Pack<W>::unpack(tile4[r * chunks + c], wv);
#pragma unroll
            for (int e = 0; e < E; ++e) acc[i] = fmaf(wv[e], xv[e], acc[i]);
          }
        }
      }
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        if (g + i * groups < rows) {  // the same for the whole warp: a row group is whole warps
          const float v = warp_sum(acc[i]);
          if (lane == 0) partial[warp][i] = v;
        }
      }
      __syncthreads();  // every warp's sums are in
      if (threadIdx.x < rows) {
        const int r = threadIdx.x, warps = lanes >> 5, gr = r % groups, i = r / groups;
        float v = 0.0f;
        for (int w = 0; w < warps; ++w) v += partial[gr * warps + w][i];
        store(m, n0 + r, v);
      }
    }
    row_base += rows;
    const int next = tile + stages * step;
    if (next < batch.tiles) {  // the same for the whole block
      if (thread_copies) {
        __syncthreads();  // every warp is done with slot s
        gemv_issue_tile<W>(batch, next, ring + s * batch.stage_bytes, full + 8 * s);
      } else {
        __syncwarp();
        if (lane == 0) stage_barrier_arrive(empty + 8 * s);
        if (threadIdx.x == 0) {
          stage_barrier_wait(empty + 8 * s, parity);  // every warp is done with slot s
          gemv_issue_tile<W>(batch, next, ring + s * batch.stage_bytes, full + 8 * s);
        }
      }
    }
    if (lanes != 32) __syncthreads();  // the partial sums are read before the next tile writes them
  }
}
)CUDA";

}  // namespace rwkvc::cuda
