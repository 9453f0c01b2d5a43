#include "backends/cuda/kernel_sources.h"

namespace rwkvc::cuda {

// WKV7: each row i of a head's N x N state evolves on its own (sa_i needs only row i), held in
// registers by the threads that own it; threads never exchange state. Long prompts: blocks of
// a few rows of one head, a few lanes per row, the tokens' r, w, k, a, b, v staged in shared
// memory a chunk of tokens at a time, the next chunk copied asynchronously while this one is
// consumed (two barriers per chunk). Decode: one warp per row over the whole GPU. A thread
// reads its row before it writes it: the state may be updated in place (s_in == s_out).
// WKV4: one thread per channel, sequential over the tokens, likewise in place.
const char* const kWkvSource = R"CUDA(
#define WKV7_CHUNK 8
// 16-byte asynchronous copies global -> shared (sm_80+): the next chunk loads during this one.
__device__ __forceinline__ void copy_async16(float* shared, const float* global) {
  unsigned address;
  asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(address) : "l"(shared));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(address), "l"(global) : "memory");
}
__device__ __forceinline__ void copy_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
__device__ __forceinline__ void copy_async_wait_all_but_newest() { asm volatile("cp.async.wait_group 1;" ::: "memory"); }

template <int N>
struct Wkv7Chunk {
  float r[WKV7_CHUNK][N], w[WKV7_CHUNK][N], k[WKV7_CHUNK][N], a[WKV7_CHUNK][N], b[WKV7_CHUNK][N], v[WKV7_CHUNK][N];
};

// Needs C % 4 == 0 and 16-byte aligned vectors (checked by the step).
template <int N>
__device__ __forceinline__ void wkv7_load_chunk(Wkv7Chunk<N>& chunk, int t0, int T, int C, int h, const float* r,
                                                const float* w, const float* k, const float* v, const float* a,
                                                const float* b) {
  constexpr int V = N / 4;
  const int count = min(WKV7_CHUNK, T - t0);
  for (int e = threadIdx.x; e < count * V; e += blockDim.x) {
    const int tt = e / V, j = (e % V) * 4;
    const i64 at = (i64)(t0 + tt) * C + (i64)h * N + j;
    copy_async16(&chunk.r[tt][j], r + at); copy_async16(&chunk.w[tt][j], w + at); copy_async16(&chunk.k[tt][j], k + at);
    copy_async16(&chunk.a[tt][j], a + at); copy_async16(&chunk.b[tt][j], b + at); copy_async16(&chunk.v[tt][j], v + at);
  }
}

// Long prompts. The per-token chain through the state bounds the time, and shared-memory reads
// its throughput: a head's rows are split over N / R blocks (R rows each, so the whole GPU
// works), L lanes per row, and lane s holds the float4 column groups g * L + s, so each read
// of a token vector is one 16-byte load for four columns and the L lanes of a row read 16 * L
// consecutive bytes. The chain is kept short: y_i = S'_i . r with S' = S diag(w) + sa b^T + v k^T
// is computed as S_i . (w r) + sa_i (b . r) + v_i (k . r) from the state before the update,
// so only sa_i = S_i . a and the update S' lie on the chain from one token to the next.
template <int N, int L>
__device__ __forceinline__ float wkv7_lanes_sum(float x) {
#pragma unroll
  for (int offset = 1; offset < L; offset <<= 1) x += __shfl_xor_sync(0xffffffffu, x, offset);
  return x;
}

template <int N, int L>
__device__ __forceinline__ void wkv7_token(float4 (&S)[N / (4 * L)], const Wkv7Chunk<N>& c, int tt, int i, int s,
                                           float* __restrict__ y_out) {
  constexpr int G = N / (4 * L);
  const float4* a4 = reinterpret_cast<const float4*>(c.a[tt]);
  const float4* w4 = reinterpret_cast<const float4*>(c.w[tt]);
  const float4* b4 = reinterpret_cast<const float4*>(c.b[tt]);
  const float4* k4 = reinterpret_cast<const float4*>(c.k[tt]);
  const float4* r4 = reinterpret_cast<const float4*>(c.r[tt]);
  float sa0 = 0.0f, sa1 = 0.0f, sa2 = 0.0f, sa3 = 0.0f, yw0 = 0.0f, yw1 = 0.0f, br = 0.0f, kr = 0.0f;
#pragma unroll
  for (int g = 0; g < G; ++g) {
    const int j = g * L + s;
    const float4 av = a4[j], wv = w4[j], rv = r4[j], bv = b4[j], kv = k4[j];
    sa0 = fmaf(S[g].x, av.x, sa0); sa1 = fmaf(S[g].y, av.y, sa1);
    sa2 = fmaf(S[g].z, av.z, sa2); sa3 = fmaf(S[g].w, av.w, sa3);
    yw0 = fmaf(S[g].x, wv.x * rv.x, yw0); yw1 = fmaf(S[g].y, wv.y * rv.y, yw1);
    yw0 = fmaf(S[g].z, wv.z * rv.z, yw0); yw1 = fmaf(S[g].w, wv.w * rv.w, yw1);
    br = fmaf(bv.x, rv.x, fmaf(bv.y, rv.y, fmaf(bv.z, rv.z, fmaf(bv.w, rv.w, br))));
    kr = fmaf(kv.x, rv.x, fmaf(kv.y, rv.y, fmaf(kv.z, rv.z, fmaf(kv.w, rv.w, kr))));
  }
  const float sai = wkv7_lanes_sum<N, L>((sa0 + sa1) + (sa2 + sa3));
  const float vi = c.v[tt][i];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    const int j = g * L + s;
    const float4 wv = w4[j], bv = b4[j], kv = k4[j];
    S[g].x = fmaf(S[g].x, wv.x, fmaf(sai, bv.x, vi * kv.x));
    S[g].y = fmaf(S[g].y, wv.y, fmaf(sai, bv.y, vi * kv.y));
    S[g].z = fmaf(S[g].z, wv.z, fmaf(sai, bv.z, vi * kv.z));
    S[g].w = fmaf(S[g].w, wv.w, fmaf(sai, bv.w, vi * kv.w));
  }
  const float yi = wkv7_lanes_sum<N, L>(yw0 + yw1) + sai * wkv7_lanes_sum<N, L>(br) + vi * wkv7_lanes_sum<N, L>(kr);
  if (s == 0) *y_out = yi;
}

template <int N, int L, int R>
__device__ __forceinline__ void wkv7_heads(int T, int C, const float* __restrict__ r, const float* __restrict__ w,
                                           const float* __restrict__ k, const float* __restrict__ v,
                                           const float* __restrict__ a, const float* __restrict__ b, const float* s_in,
                                           float* s_out, float* __restrict__ y) {
  constexpr int G = N / (4 * L);
  __shared__ __align__(16) Wkv7Chunk<N> chunks[2];
  constexpr int parts = N / R;
  const int h = blockIdx.x / parts, i = (blockIdx.x % parts) * R + threadIdx.x / L, s = threadIdx.x % L;
  kernel_entry();
  float4 S[G];
  const float4* row_in = reinterpret_cast<const float4*>(s_in + ((i64)h * N + i) * N);
#pragma unroll
  for (int g = 0; g < G; ++g) S[g] = row_in[g * L + s];
  wkv7_load_chunk<N>(chunks[0], 0, T, C, h, r, w, k, v, a, b);
  copy_async_commit();
  int current = 0;
  float* y_row = y + (i64)h * N + i;
  for (int t0 = 0; t0 < T; t0 += WKV7_CHUNK) {
    if (t0 + WKV7_CHUNK < T) wkv7_load_chunk<N>(chunks[current ^ 1], t0 + WKV7_CHUNK, T, C, h, r, w, k, v, a, b);
    copy_async_commit();
    copy_async_wait_all_but_newest();
    __syncthreads();  // this chunk has landed for every thread
    const Wkv7Chunk<N>& c = chunks[current];
    const int count = min(WKV7_CHUNK, T - t0);
    if (count == WKV7_CHUNK) {
      // Unrolled: the next tokens' loads and y sums overlap this token's chain.
#pragma unroll
      for (int tt = 0; tt < WKV7_CHUNK; ++tt) wkv7_token<N, L>(S, c, tt, i, s, y_row + (i64)(t0 + tt) * C);
    } else {
      for (int tt = 0; tt < count; ++tt) wkv7_token<N, L>(S, c, tt, i, s, y_row + (i64)(t0 + tt) * C);
    }
    __syncthreads();  // every thread is done with this chunk before it is loaded over
    current ^= 1;
  }
  float4* row_out = reinterpret_cast<float4*>(s_out + ((i64)h * N + i) * N);
#pragma unroll
  for (int g = 0; g < G; ++g) row_out[g * L + s] = S[g];
}

// One token's update of one state row held by a warp (lane l: columns l, l + 32, ...):
// sa = S.a, S = S*w + sa*b + v_i*k, and the row's output S.r, the same on every lane.
template <int Q>
__device__ __forceinline__ float wkv7_warp_row_step(float (&S)[Q], const float (&r)[Q], const float (&w)[Q],
                                                    const float (&k)[Q], const float (&a)[Q], const float (&b)[Q],
                                                    float vi) {
  float sa = 0.0f;
#pragma unroll
  for (int q = 0; q < Q; ++q) sa = fmaf(S[q], a[q], sa);
  sa = warp_sum(sa);
  float out = 0.0f;
#pragma unroll
  for (int q = 0; q < Q; ++q) {
    S[q] = fmaf(S[q], w[q], fmaf(sa, b[q], vi * k[q]));
    out = fmaf(S[q], r[q], out);
  }
  return warp_sum(out);
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
  kernel_entry();
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
    const float out = wkv7_warp_row_step<Q>(S, cr, cw, ck, ca, cb, vi);
    if (lane == 0) y[(i64)t * C + h * N + i] = out;
  }
#pragma unroll
  for (int q = 0; q < Q; ++q) s_out[row * N + lane + 32 * q] = S[q];
}

// Pulls [p, p + bytes) into L2, spread over the block. Only a hint, so it may run before
// grid_wait(): the one-token kernel's state rows (and folded LoRA rows) then come from L2 once
// the wait is over.
__device__ __forceinline__ void prefetch_l2_block(const void* p, i64 bytes) {
  const char* base = reinterpret_cast<const char*>(p);
  for (i64 offset = (i64)threadIdx.x * 128; offset < bytes; offset += (i64)blockDim.x * 128)
    asm volatile("prefetch.L2 [%0];" ::"l"(base + offset));
}

// One token of head h by one block (a fused wkv region's middle phase): warps take the
// head's rows in turn, lanes the columns; the token's vectors stay in registers across rows.
template <int N>
// No __restrict__: the block itself wrote the vectors just before (read-only loads could miss that).
__device__ __forceinline__ void wkv7_head_one_token(int h, const float* r, const float* w, const float* k,
                                                    const float* v, const float* a, const float* b, const float* s_in,
                                                    float* s_out, float* y) {
  constexpr int Q = N / 32;
  const int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
  float cr[Q], cw[Q], ck[Q], ca[Q], cb[Q];
#pragma unroll
  for (int q = 0; q < Q; ++q) {
    const i64 j = (i64)h * N + lane + 32 * q;
    cr[q] = r[j]; cw[q] = w[j]; ck[q] = k[j]; ca[q] = a[j]; cb[q] = b[j];
  }
  // The kernel runs min(32 N, 1024) threads: R rows a warp. Every row of the warp is loaded
  // before the first is stored (s_out may be s_in, so the compiler would not hoist the loads).
  constexpr int R = N > 32 ? N / 32 : 1;
  if (warps * R == N) {
    const int first = threadIdx.x >> 5;
    float S[R][Q], vi[R];
#pragma unroll
    for (int u = 0; u < R; ++u) {
      const i64 row = (i64)h * N + first + u * warps;
      vi[u] = v[row];
#pragma unroll
      for (int q = 0; q < Q; ++q) S[u][q] = s_in[row * N + lane + 32 * q];
    }
#pragma unroll
    for (int u = 0; u < R; ++u) {
      const i64 row = (i64)h * N + first + u * warps;
      const float out = wkv7_warp_row_step<Q>(S[u], cr, cw, ck, ca, cb, vi[u]);
#pragma unroll
      for (int q = 0; q < Q; ++q) s_out[row * N + lane + 32 * q] = S[u][q];
      if (lane == 0) y[row] = out;
    }
    return;
  }
  for (int i = threadIdx.x >> 5; i < N; i += warps) {
    const i64 row = (i64)h * N + i;
    float S[Q];
#pragma unroll
    for (int q = 0; q < Q; ++q) S[q] = s_in[row * N + lane + 32 * q];
    const float out = wkv7_warp_row_step<Q>(S, cr, cw, ck, ca, cb, v[row]);
#pragma unroll
    for (int q = 0; q < Q; ++q) s_out[row * N + lane + 32 * q] = S[q];
    if (lane == 0) y[row] = out;
  }
}

extern "C" __global__ void wkv4_channels(int T, int C, const float* __restrict__ w, const float* __restrict__ u,
                                         const float* __restrict__ k, const float* __restrict__ v, const float* aa_in,
                                         const float* bb_in, const float* pp_in, float* __restrict__ y, float* aa_out,
                                         float* bb_out, float* pp_out) {
  kernel_entry();
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
