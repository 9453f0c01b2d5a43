#include "backends/cuda/kernel_sources.h"

namespace rwkvc::cuda {

// WKV7: each row i of a head's N x N state evolves on its own (sa_i needs only row i), held in
// registers by the threads that own it; threads never exchange state. Long prompts: one block
// per head, a few lanes per row, the token's r, w, k, a, b, v staged in shared memory a chunk
// of tokens at a time, the next chunk copied asynchronously while this one is consumed (two
// barriers per chunk). Decode: one warp per row over the whole GPU. A thread reads its row before it writes it: the state may be updated in
// place (s_in == s_out).
// WKV4: one thread per channel, sequential over the tokens, likewise in place.
const char* const kWkvSource = R"CUDA(
#define WKV7_CHUNK 8
// 4-byte asynchronous copies global -> shared (sm_80+): the next chunk loads during this one.
__device__ __forceinline__ void copy_async(float* shared, const float* global) {
  unsigned address;
  asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(address) : "l"(shared));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"(address), "l"(global) : "memory");
}
__device__ __forceinline__ void copy_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
__device__ __forceinline__ void copy_async_wait_all_but_newest() { asm volatile("cp.async.wait_group 1;" ::: "memory"); }

template <int N>
struct Wkv7Chunk {
  float r[WKV7_CHUNK][N], w[WKV7_CHUNK][N], k[WKV7_CHUNK][N], a[WKV7_CHUNK][N], b[WKV7_CHUNK][N], v[WKV7_CHUNK][N];
};

template <int N>
__device__ __forceinline__ void wkv7_load_chunk(Wkv7Chunk<N>& chunk, int t0, int T, int C, int h, const float* r,
                                                const float* w, const float* k, const float* v, const float* a,
                                                const float* b) {
  const int count = min(WKV7_CHUNK, T - t0);
  for (int e = threadIdx.x; e < count * N; e += blockDim.x) {
    const int tt = e / N, j = e % N;
    const i64 at = (i64)(t0 + tt) * C + (i64)h * N + j;
    copy_async(&chunk.r[tt][j], r + at); copy_async(&chunk.w[tt][j], w + at); copy_async(&chunk.k[tt][j], k + at);
    copy_async(&chunk.a[tt][j], a + at); copy_async(&chunk.b[tt][j], b + at); copy_async(&chunk.v[tt][j], v + at);
  }
}

// L lanes per row (blockDim.x = N * L): lane s of row i holds columns q * L + s, so a step reads
// consecutive shared-memory words across the lanes, and the row's sums take log2(L) shuffles.
// More lanes shorten each thread's per-token chain, which bounds a long prompt's time.
template <int N, int L>
__device__ __forceinline__ void wkv7_heads(int T, int C, const float* __restrict__ r, const float* __restrict__ w,
                                           const float* __restrict__ k, const float* __restrict__ v,
                                           const float* __restrict__ a, const float* __restrict__ b, const float* s_in,
                                           float* s_out, float* __restrict__ y) {
  constexpr int Q = N / L;
  __shared__ Wkv7Chunk<N> chunks[2];
  const int h = blockIdx.x, i = threadIdx.x / L, s = threadIdx.x % L;
  float S[Q];
  const float* row_in = s_in + ((i64)h * N + i) * N;
#pragma unroll
  for (int q = 0; q < Q; ++q) S[q] = row_in[q * L + s];
  wkv7_load_chunk<N>(chunks[0], 0, T, C, h, r, w, k, v, a, b);
  copy_async_commit();
  int current = 0;
  for (int t0 = 0; t0 < T; t0 += WKV7_CHUNK) {
    if (t0 + WKV7_CHUNK < T) wkv7_load_chunk<N>(chunks[current ^ 1], t0 + WKV7_CHUNK, T, C, h, r, w, k, v, a, b);
    copy_async_commit();
    copy_async_wait_all_but_newest();
    __syncthreads();  // this chunk has landed for every thread
    const Wkv7Chunk<N>& c = chunks[current];
    const int count = min(WKV7_CHUNK, T - t0);
    for (int tt = 0; tt < count; ++tt) {
      float s0 = 0.0f, s1 = 0.0f;  // two partial sums: a shorter dependency chain
#pragma unroll
      for (int q = 0; q < Q; ++q) {
        if (q % 2 == 0) s0 = fmaf(S[q], c.a[tt][q * L + s], s0); else s1 = fmaf(S[q], c.a[tt][q * L + s], s1);
      }
      float sai = s0 + s1;
#pragma unroll
      for (int offset = 1; offset < L; offset <<= 1) sai += __shfl_xor_sync(0xffffffffu, sai, offset);
      const float vi = c.v[tt][i];
      float y0 = 0.0f, y1 = 0.0f;
#pragma unroll
      for (int q = 0; q < Q; ++q) {
        const int j = q * L + s;
        S[q] = fmaf(S[q], c.w[tt][j], fmaf(sai, c.b[tt][j], vi * c.k[tt][j]));
        if (q % 2 == 0) y0 = fmaf(S[q], c.r[tt][j], y0); else y1 = fmaf(S[q], c.r[tt][j], y1);
      }
      float yi = y0 + y1;
#pragma unroll
      for (int offset = 1; offset < L; offset <<= 1) yi += __shfl_xor_sync(0xffffffffu, yi, offset);
      if (s == 0) y[(i64)(t0 + tt) * C + (i64)h * N + i] = yi;
    }
    __syncthreads();  // every thread is done with this chunk before it is loaded over
    current ^= 1;
  }
  float* row_out = s_out + ((i64)h * N + i) * N;
#pragma unroll
  for (int q = 0; q < Q; ++q) row_out[q * L + s] = S[q];
}

// WKV7 with one warp per row of the state: lane l holds columns l, l + 32, ... (N / 32 of
// them), so the row's sums are warp shuffles and every load is coalesced; no shared memory and
// no barriers. H * N warps fill the GPU at one token, and the next token's vectors are loaded
// while this one is computed.
template <int N>
__device__ __forceinline__ void wkv7_warp_rows(int T, int C, const float* __restrict__ r, const float* __restrict__ w,
                                               const float* __restrict__ k, const float* __restrict__ v,
                                               const float* __restrict__ a, const float* __restrict__ b,
                                               const float* s_in, float* s_out, float* __restrict__ y) {
  constexpr int Q = N / 32;
  const i64 row = (blockIdx.x * (i64)blockDim.x + threadIdx.x) >> 5;  // h * N + i
  const int lane = threadIdx.x & 31;
  if (row >= C) return;  // C = H * N rows
  const i64 h = row / N, i = row % N;
  float S[Q];
#pragma unroll
  for (int q = 0; q < Q; ++q) S[q] = s_in[row * N + lane + 32 * q];
  float nr[Q], nw[Q], nk[Q], na[Q], nb[Q], nv = 0.0f;
  auto load = [&](int t) {
    const i64 base = (i64)t * C + h * N + lane;
#pragma unroll
    for (int q = 0; q < Q; ++q) {
      nr[q] = r[base + 32 * q]; nw[q] = w[base + 32 * q]; nk[q] = k[base + 32 * q];
      na[q] = a[base + 32 * q]; nb[q] = b[base + 32 * q];
    }
    nv = v[(i64)t * C + h * N + i];
  };
  if (T > 0) load(0);
  for (int t = 0; t < T; ++t) {
    float cr[Q], cw[Q], ck[Q], ca[Q], cb[Q];
#pragma unroll
    for (int q = 0; q < Q; ++q) { cr[q] = nr[q]; cw[q] = nw[q]; ck[q] = nk[q]; ca[q] = na[q]; cb[q] = nb[q]; }
    const float vi = nv;
    if (t + 1 < T) load(t + 1);
    float sa = 0.0f;
#pragma unroll
    for (int q = 0; q < Q; ++q) sa = fmaf(S[q], ca[q], sa);
    sa = warp_sum(sa);
    float out = 0.0f;
#pragma unroll
    for (int q = 0; q < Q; ++q) {
      S[q] = fmaf(S[q], cw[q], fmaf(sa, cb[q], vi * ck[q]));
      out = fmaf(S[q], cr[q], out);
    }
    out = warp_sum(out);
    if (lane == 0) y[(i64)t * C + h * N + i] = out;
  }
#pragma unroll
  for (int q = 0; q < Q; ++q) s_out[row * N + lane + 32 * q] = S[q];
}

extern "C" __global__ void wkv4_channels(int T, int C, const float* __restrict__ w, const float* __restrict__ u,
                                         const float* __restrict__ k, const float* __restrict__ v, const float* aa_in,
                                         const float* bb_in, const float* pp_in, float* __restrict__ y, float* aa_out,
                                         float* bb_out, float* pp_out) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float aa = aa_in[c], bb = bb_in[c], pp = pp_in[c];
  const float wc = w[c], uc = u[c];
  for (int t = 0; t < T; ++t) {
    const i64 at = (i64)t * C + c;
    const float kt = k[at], vt = v[at];
    float q = fmaxf(pp, uc + kt);
    float e_state = expf(pp - q), e_token = expf(uc + kt - q);
    y[at] = (e_state * aa + e_token * vt) / (e_state * bb + e_token);
    q = fmaxf(pp + wc, kt);
    e_state = expf(pp + wc - q);
    e_token = expf(kt - q);
    aa = e_state * aa + e_token * vt;
    bb = e_state * bb + e_token;
    pp = q;
  }
  aa_out[c] = aa;
  bb_out[c] = bb;
  pp_out[c] = pp;
}
)CUDA";

}  // namespace rwkvc::cuda
