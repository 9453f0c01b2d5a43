#include "backends/cuda/kernel_sources.h"

namespace rwkvc::cuda {

// WKV7 for long prompts, L tokens at a time (the algebra: tests/cuda/wkv7_chunked_reference.h).
// Inside a chunk the tokens' effects on a row of the state are small matrix products, so no
// chain runs from token to token. Two kernels:
//   wkv7c_prepare, a block per (chunk, head), all chunks at once: what does not depend on the
//     state (the cumulative log2 decays, the pair matrices, the triangular solve, the vectors
//     scaled by their decays) into one record per (chunk, head) in scratch memory;
//   wkv7c_rows, a block per R rows of a head, walking the chunks in order: only the row work
//     (projections of the state on the scaled a and r, sa and y by the record's matrices, the
//     state update), the next chunk's record copied in by cp.async while this one is used;
//     or, by default, wkv7c_rows_mma (below): the same row work on tensor cores.
// A shorter last chunk is padded with tokens that change nothing (w = 1, everything else 0);
// its record has a buffer of its own (the full chunks' buffer holds T / L records). The state
// row is read before it is written by the threads that own it: s_in may be s_out.
const char* const kWkv7ChunkedSource = R"CUDA(
// One (chunk, head) record, in floats: a, r, b, k scaled ([L][N] each), the matrices W, X,
// P W and P X + Q ([t][tau] each, the float4 groups of row t swizzled, see wkv7c_swizzle), the
// chunk's decay of each column.
template <int N, int L>
struct Wkv7cLayout {
  static constexpr int SCALED_A = 0, SCALED_R = L * N, SCALED_B = 2 * L * N, SCALED_K = 3 * L * N;
  static constexpr int W = 4 * L * N, X = W + L * L, PW = X + L * L, PXQ = PW + L * L;
  static constexpr int DECAY = PXQ + L * L, SIZE = DECAY + N;
};

// Where float4 group q of row t of a record's matrix lies in the row: lanes reading row t, one a
// lane, then hit distinct banks (rows are 16 words; without it eight lanes share four banks).
template <int L>
__device__ __forceinline__ int wkv7c_swizzle(int t, int q) {
  return q ^ ((t >> 1) & (L / 4 - 1));
}

template <int N, int L>
__device__ __forceinline__ i64 wkv7c_record_offset(int chunk, int h, int H, int T) {
  return chunk < T / L ? ((i64)chunk * H + h) * Wkv7cLayout<N, L>::SIZE : (i64)h * Wkv7cLayout<N, L>::SIZE;
}

template <int N, int L>
struct Wkv7cPrepareShared {
  float r[L][N], w[L][N], k[L][N], a[L][N], b[L][N], c[L][N];
  float pair[4][L][L + 1];  // A, B, P, Q (rows padded: the solve's lanes read along a row)
  float mix[4][L][L + 1];   // W, X, P W, P X + Q
};

// A thread per pair (t, tau): the strictly lower ones first (the costly ones), then the
// diagonal. Each walks the columns from its own offset (no two lanes of a quarter warp on one
// bank).
template <int N, int L, int THREADS>
__device__ __forceinline__ void wkv7c_pairs(Wkv7cPrepareShared<N, L>& sh) {
  constexpr int Q = N / 4, LOWER = L * (L - 1) / 2, JOBS = LOWER + L;
  for (int job = threadIdx.x; job < JOBS; job += THREADS) {
    int t = job - LOWER, tau = t;
    if (job < LOWER) {
      int rest = job;
      t = 1;
      while (rest >= t) { rest -= t; ++t; }
      tau = rest;
    }
    const float4* a_t = reinterpret_cast<const float4*>(sh.a[t]);
    const float4* r_t = reinterpret_cast<const float4*>(sh.r[t]);
    const float4* w_t = reinterpret_cast<const float4*>(sh.w[t]);
    const float4* c_before = reinterpret_cast<const float4*>(sh.c[t > 0 ? t - 1 : 0]);
    const float4* b_tau = reinterpret_cast<const float4*>(sh.b[tau]);
    const float4* k_tau = reinterpret_cast<const float4*>(sh.k[tau]);
    const float4* c_tau = reinterpret_cast<const float4*>(sh.c[tau]);
    float A = 0.0f, B = 0.0f, P = 0.0f, Qs = 0.0f;
    if (tau < t) {
      for (int step = 0; step < Q; ++step) {
        const int q = (step + threadIdx.x) % Q;
        const float4 at = a_t[q], rt = r_t[q], wt = w_t[q], cb = c_before[q], bt = b_tau[q], kt = k_tau[q],
                     ct = c_tau[q];
#define WKV7C_PAIR(x)                                  \
  {                                                    \
    const float e = exp2f(cb.x - ct.x);                \
    const float ae = at.x * e, rf = rt.x * (e * wt.x); \
    A = fmaf(ae, bt.x, A);                             \
    B = fmaf(ae, kt.x, B);                             \
    P = fmaf(rf, bt.x, P);                             \
    Qs = fmaf(rf, kt.x, Qs);                           \
  }
        WKV7C_PAIR(x) WKV7C_PAIR(y) WKV7C_PAIR(z) WKV7C_PAIR(w)
#undef WKV7C_PAIR
      }
      sh.pair[0][t][tau] = A;
      sh.pair[1][t][tau] = B;
    } else {
      for (int step = 0; step < Q; ++step) {
        const int q = (step + threadIdx.x) % Q;
        const float4 rt = r_t[q], bt = b_tau[q], kt = k_tau[q];
        P = fmaf(rt.x, bt.x, fmaf(rt.y, bt.y, fmaf(rt.z, bt.z, fmaf(rt.w, bt.w, P))));
        Qs = fmaf(rt.x, kt.x, fmaf(rt.y, kt.y, fmaf(rt.z, kt.z, fmaf(rt.w, kt.w, Qs))));
      }
    }
    sh.pair[2][t][tau] = P;
    sh.pair[3][t][tau] = Qs;
  }
}

// One warp: lane j < L holds column j of W = (I - A)^-1, lane L + j column j of X = W B, both
// by forward substitution (the entry of row tau is final once the rows above it are added in),
// then P W and P X + Q. Entries above the diagonal come out zero.
template <int L>
__device__ __forceinline__ void wkv7c_solve(const float (&pair)[4][L][L + 1], float (&mix)[4][L][L + 1]) {
  const int lane = threadIdx.x & 31;
  if (lane >= 2 * L) return;
  const bool is_x = lane >= L;
  const int col = is_x ? lane - L : lane;
  float x[L];
#pragma unroll
  for (int t = 0; t < L; ++t) x[t] = is_x ? (t > col ? pair[1][t][col] : 0.0f) : (t == col ? 1.0f : 0.0f);
#pragma unroll
  for (int tau = 0; tau < L; ++tau)
#pragma unroll
    for (int t = tau + 1; t < L; ++t) x[t] = fmaf(pair[0][t][tau], x[tau], x[t]);
#pragma unroll
  for (int t = 0; t < L; ++t) mix[is_x ? 1 : 0][t][col] = x[t];
#pragma unroll
  for (int t = 0; t < L; ++t) {
    float p = is_x && t >= col ? pair[3][t][col] : 0.0f;
#pragma unroll
    for (int tau = 0; tau <= t; ++tau) p = fmaf(pair[2][t][tau], x[tau], p);
    mix[is_x ? 3 : 2][t][col] = p;
  }
}

// The record of one chunk and head. Needs 16-byte aligned vectors (checked by the step;
// C = H * N is a multiple of 4).
template <int N, int L, int THREADS>
__device__ __forceinline__ void wkv7c_prepare_record(Wkv7cPrepareShared<N, L>& sh, int chunk, int h, int T, int C,
                                                     const float* __restrict__ r, const float* __restrict__ w,
                                                     const float* __restrict__ k, const float* __restrict__ a,
                                                     const float* __restrict__ b, float* full, float* tail) {
  using Layout = Wkv7cLayout<N, L>;
  constexpr int Q = N / 4;
  static_assert(L <= 16 && L % 4 == 0 && N % 4 == 0, "chunk shape");
  const int H = C / N, t0 = chunk * L;
  const float4 zero = {0.0f, 0.0f, 0.0f, 0.0f}, one = {1.0f, 1.0f, 1.0f, 1.0f};
  for (int e = threadIdx.x; e < L * Q; e += THREADS) {
    const int tt = e / Q, q = e % Q;
    const bool real = t0 + tt < T;
    const i64 at = (i64)(t0 + tt) * C + (i64)h * N + 4 * q;
    reinterpret_cast<float4*>(sh.r[tt])[q] = real ? *reinterpret_cast<const float4*>(r + at) : zero;
    reinterpret_cast<float4*>(sh.w[tt])[q] = real ? *reinterpret_cast<const float4*>(w + at) : one;
    reinterpret_cast<float4*>(sh.k[tt])[q] = real ? *reinterpret_cast<const float4*>(k + at) : zero;
    reinterpret_cast<float4*>(sh.a[tt])[q] = real ? *reinterpret_cast<const float4*>(a + at) : zero;
    reinterpret_cast<float4*>(sh.b[tt])[q] = real ? *reinterpret_cast<const float4*>(b + at) : zero;
  }
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

// Every record at once: chunk blockIdx.x, head blockIdx.y.
template <int N, int L, int THREADS>
__device__ __forceinline__ void wkv7c_prepare(int T, int C, const float* __restrict__ r, const float* __restrict__ w,
                                              const float* __restrict__ k, const float* __restrict__ a,
                                              const float* __restrict__ b, float* full, float* tail) {
  __shared__ __align__(16) Wkv7cPrepareShared<N, L> sh;
  kernel_entry();
  wkv7c_prepare_record<N, L, THREADS>(sh, blockIdx.x, blockIdx.y, T, C, r, w, k, a, b, full, tail);
}

// 16-byte asynchronous copy global -> shared; `bytes` < 16 fills the rest with zeros.
__device__ __forceinline__ void wkv7c_copy16(float* shared, const float* global, int bytes) {
  unsigned address;
  asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(address) : "l"(shared));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(address), "l"(global), "r"(bytes) : "memory");
}

template <int N, int L, int R>
struct Wkv7cRowsShared {
  float record[2][Wkv7cLayout<N, L>::SIZE];
  float v[2][L][R];
  float uy[R][2 * L + 4];  // u_t then yr_t of each row (padded: row groups of a warp on other banks)
  float sa[R][L + 4];
  float y[L][R + 1];       // staged for coalesced stores
};

// Lane s of LANES keeps part s of `acc` (COUNT / LANES sums, in order) summed over the lanes.
template <int COUNT, int OFFSET>
__device__ __forceinline__ void wkv7c_reduce_scatter(float* acc, int s) {
  if constexpr (OFFSET >= 1) {
    constexpr int HALF = COUNT / 2;
    const bool upper = (s & OFFSET) != 0;
#pragma unroll
    for (int m = 0; m < HALF; ++m) {
      const float send = upper ? acc[m] : acc[m + HALF];
      const float keep = upper ? acc[m + HALF] : acc[m];
      acc[m] = keep + __shfl_xor_sync(0xffffffffu, send, OFFSET);
    }
    wkv7c_reduce_scatter<HALF, OFFSET / 2>(acc, s);
  }
}

template <int N, int L, int R, int THREADS>
__device__ __forceinline__ void wkv7c_fetch(Wkv7cRowsShared<N, L, R>& sh, int buffer, int chunk, int T, int C, int h,
                                            int i0, const float* __restrict__ v, const float* full, const float* tail) {
  using Layout = Wkv7cLayout<N, L>;
  const float* record = (chunk < T / L ? full : tail) + wkv7c_record_offset<N, L>(chunk, h, C / N, T);
  for (int e = threadIdx.x; e < Layout::SIZE / 4; e += THREADS) wkv7c_copy16(&sh.record[buffer][4 * e], record + 4 * e, 16);
  for (int e = threadIdx.x; e < L * R / 4; e += THREADS) {
    const int tt = e / (R / 4), q = e % (R / 4), t = chunk * L + tt;
    const bool real = t < T;
    wkv7c_copy16(&sh.v[buffer][tt][4 * q], v + (i64)(real ? t : 0) * C + (i64)h * N + i0 + 4 * q, real ? 16 : 0);
  }
  asm volatile("cp.async.commit_group;" ::: "memory");
}

// Whether record `index` is written (a flag the fused kernel's producers set, see below):
// thread 0 asks early (a plain load, its answer used a chunk later) and, if it was not, waits
// before the barrier that precedes the copy of the record.
__device__ __forceinline__ int wkv7c_peek(const int* ready, int index) {
  int value;
  asm volatile("ld.relaxed.gpu.global.b32 %0, [%1];" : "=r"(value) : "l"(ready + index) : "memory");
  return value;
}
__device__ __forceinline__ void wkv7c_wait(const int* ready, int index) {
  while (wkv7c_peek(ready, index) == 0) __nanosleep(100);
}

// R rows of one head (row block `block` of the H * N / R), RT a thread; N / 4 lanes a row
// group, lane s holding columns 4s .. 4s+3. With `ready`, the records are being written while
// this runs: record c * H + h is read only once ready[c * H + h] is set.
template <int N, int L, int R, int RT>
__device__ __forceinline__ void wkv7c_rows_block(Wkv7cRowsShared<N, L, R>& sh, int block, int T, int C,
                                                 const float* __restrict__ v, const float* full, const float* tail,
                                                 const int* ready, const float* s_in, float* s_out,
                                                 float* __restrict__ y) {
  using Layout = Wkv7cLayout<N, L>;
  constexpr int LANES = N / 4, THREADS = R / RT * LANES, COUNT = RT * 2 * L, PER = COUNT / LANES;
  static_assert(32 % LANES == 0 && L % LANES == 0 && COUNT % LANES == 0 && R % RT == 0 && R % 4 == 0 &&
                    N % R == 0 && THREADS % 32 == 0 && Layout::SIZE % 4 == 0, "rows and lanes");
  constexpr int parts = N / R;
  const int H = C / N, h = block / parts, i0 = (block % parts) * R;
  const int g = threadIdx.x / LANES, s = threadIdx.x % LANES, chunks = (T + L - 1) / L;
  float4 S[RT];
#pragma unroll
  for (int p = 0; p < RT; ++p) S[p] = reinterpret_cast<const float4*>(s_in + ((i64)h * N + i0 + g * RT + p) * N)[s];
  if (ready != nullptr && threadIdx.x == 0) {
    wkv7c_wait(ready, h);
    if (chunks > 1) wkv7c_wait(ready, H + h);
  }
  __syncthreads();
  wkv7c_fetch<N, L, R, THREADS>(sh, 0, 0, T, C, h, i0, v, full, tail);
  for (int chunk = 0; chunk < chunks; ++chunk) {
    // The record copied at the next iteration's start, asked for now.
    const bool watch = ready != nullptr && threadIdx.x == 0 && chunk + 2 < chunks;
    const int watched = (chunk + 2) * H + h;
    const int seen = watch ? wkv7c_peek(ready, watched) : 1;
    const int buffer = chunk & 1, t0 = chunk * L;
    if (chunk + 1 < chunks) wkv7c_fetch<N, L, R, THREADS>(sh, buffer ^ 1, chunk + 1, T, C, h, i0, v, full, tail);
    else asm volatile("cp.async.commit_group;" ::: "memory");  // an empty group keeps the count
    asm volatile("cp.async.wait_group 1;" ::: "memory");
    __syncthreads();  // this chunk's record and v are in shared memory
    const float* record = sh.record[buffer];
    // 1. u_t = S_i . (scaled a_t), yr_t = S_i . (scaled r_t), summed over the row's lanes.
    float acc[COUNT];
#pragma unroll
    for (int t = 0; t < L; ++t) {
      const float4 av = reinterpret_cast<const float4*>(record + Layout::SCALED_A + t * N)[s];
      const float4 rv = reinterpret_cast<const float4*>(record + Layout::SCALED_R + t * N)[s];
#pragma unroll
      for (int p = 0; p < RT; ++p) {
        acc[p * 2 * L + t] = fmaf(S[p].x, av.x, fmaf(S[p].y, av.y, fmaf(S[p].z, av.z, S[p].w * av.w)));
        acc[p * 2 * L + L + t] = fmaf(S[p].x, rv.x, fmaf(S[p].y, rv.y, fmaf(S[p].z, rv.z, S[p].w * rv.w)));
      }
    }
    wkv7c_reduce_scatter<COUNT, LANES / 2>(acc, s);
#pragma unroll
    for (int m = 0; m < PER; ++m) {
      const int index = s * PER + m;
      sh.uy[g * RT + index / (2 * L)][index % (2 * L)] = acc[m];
    }
    __syncwarp();
    // The rows' u and v in registers (read by every token below).
    float u[RT][L], vr[RT][L];
#pragma unroll
    for (int p = 0; p < RT; ++p)
#pragma unroll
      for (int q = 0; q < L / 4; ++q) {
        const float4 x = reinterpret_cast<const float4*>(sh.uy[g * RT + p])[q];
        u[p][4 * q] = x.x; u[p][4 * q + 1] = x.y; u[p][4 * q + 2] = x.z; u[p][4 * q + 3] = x.w;
      }
#pragma unroll
    for (int t = 0; t < L; ++t) {
      if constexpr (RT % 2 == 0) {
#pragma unroll
        for (int p = 0; p < RT; p += 2) {
          const float2 x = reinterpret_cast<const float2*>(&sh.v[buffer][t][g * RT + p])[0];
          vr[p][t] = x.x;
          vr[p + 1][t] = x.y;
        }
      } else {
#pragma unroll
        for (int p = 0; p < RT; ++p) vr[p][t] = sh.v[buffer][t][g * RT + p];
      }
    }
    // 2. sa_t = (W u + X v)_t and y_t = yr_t + (P W u + (P X + Q) v)_t, tokens s, s + LANES, ...
    //    (row t of each matrix read once, by float4s, for the thread's rows)
#pragma unroll
    for (int m = 0; m < L / LANES; ++m) {
      const int t = s + m * LANES;
      float sat[RT], yt[RT];
#pragma unroll
      for (int p = 0; p < RT; ++p) {
        sat[p] = 0.0f;
        yt[p] = sh.uy[g * RT + p][L + t];
      }
#pragma unroll
      for (int q = 0; q < L / 4; ++q) {
        const int at = t * L + 4 * wkv7c_swizzle<L>(t, q);
        const float4 wm = *reinterpret_cast<const float4*>(record + Layout::W + at);
        const float4 xm = *reinterpret_cast<const float4*>(record + Layout::X + at);
        const float4 pw = *reinterpret_cast<const float4*>(record + Layout::PW + at);
        const float4 pxq = *reinterpret_cast<const float4*>(record + Layout::PXQ + at);
#pragma unroll
        for (int p = 0; p < RT; ++p) {
#define WKV7C_SA_Y(c, o)                                                           \
  sat[p] = fmaf(wm.c, u[p][4 * q + o], fmaf(xm.c, vr[p][4 * q + o], sat[p])); \
  yt[p] = fmaf(pw.c, u[p][4 * q + o], fmaf(pxq.c, vr[p][4 * q + o], yt[p]));
          WKV7C_SA_Y(x, 0) WKV7C_SA_Y(y, 1) WKV7C_SA_Y(z, 2) WKV7C_SA_Y(w, 3)
#undef WKV7C_SA_Y
        }
      }
#pragma unroll
      for (int p = 0; p < RT; ++p) {
        sh.sa[g * RT + p][t] = sat[p];
        sh.y[t][g * RT + p] = yt[p];
      }
    }
    __syncwarp();
    // 3. S_i = S_i diag(decay) + sum_t sa_t (scaled b_t) + v_t (scaled k_t).
    float sa[RT][L];
#pragma unroll
    for (int p = 0; p < RT; ++p)
#pragma unroll
      for (int q = 0; q < L / 4; ++q) {
        const float4 x = reinterpret_cast<const float4*>(sh.sa[g * RT + p])[q];
        sa[p][4 * q] = x.x; sa[p][4 * q + 1] = x.y; sa[p][4 * q + 2] = x.z; sa[p][4 * q + 3] = x.w;
      }
    const float4 d = reinterpret_cast<const float4*>(record + Layout::DECAY)[s];
#pragma unroll
    for (int p = 0; p < RT; ++p) {
      S[p].x *= d.x; S[p].y *= d.y; S[p].z *= d.z; S[p].w *= d.w;
    }
#pragma unroll
    for (int t = 0; t < L; ++t) {
      const float4 bv = reinterpret_cast<const float4*>(record + Layout::SCALED_B + t * N)[s];
      const float4 kv = reinterpret_cast<const float4*>(record + Layout::SCALED_K + t * N)[s];
#pragma unroll
      for (int p = 0; p < RT; ++p) {
        const float sat = sa[p][t], vt = vr[p][t];
        S[p].x = fmaf(sat, bv.x, fmaf(vt, kv.x, S[p].x));
        S[p].y = fmaf(sat, bv.y, fmaf(vt, kv.y, S[p].y));
        S[p].z = fmaf(sat, bv.z, fmaf(vt, kv.z, S[p].z));
        S[p].w = fmaf(sat, bv.w, fmaf(vt, kv.w, S[p].w));
      }
    }
    if (watch && seen == 0) wkv7c_wait(ready, watched);
    __syncthreads();  // y is staged; nobody reads this buffer any more
    for (int e = threadIdx.x; e < L * R; e += THREADS) {
      const int tt = e / R, i = e % R;
      if (t0 + tt < T) y[(i64)(t0 + tt) * C + (i64)h * N + i0 + i] = sh.y[tt][i];
    }
  }
#pragma unroll
  for (int p = 0; p < RT; ++p) reinterpret_cast<float4*>(s_out + ((i64)h * N + i0 + g * RT + p) * N)[s] = S[p];
}

// After wkv7c_prepare: row block blockIdx.x.
template <int N, int L, int R, int RT>
__device__ __forceinline__ void wkv7c_rows(int T, int C, const float* __restrict__ v, const float* full,
                                           const float* tail, const float* s_in, float* s_out, float* __restrict__ y) {
  __shared__ __align__(16) Wkv7cRowsShared<N, L, R> sh;
  kernel_entry();
  wkv7c_rows_block<N, L, R, RT>(sh, blockIdx.x, T, C, v, full, tail, nullptr, s_in, s_out, y);
}

template <int N, int L, int R>
union Wkv7cFusedShared {
  Wkv7cPrepareShared<N, L> prepare;
  Wkv7cRowsShared<N, L, R> rows;
};

// Both in one launch, so that the row blocks (memory-light, bound by their arithmetic) run
// beside the writing of the records (bound by memory) and read them while they are still in
// L2: blocks [0, H * N / R) are the row blocks, the rest producers, which write the records in
// chunk order (producer p: records p, p + producers, ...) and set ready[record] (zeroed before
// the launch) after each. Producers never wait, so the row blocks cannot hold them off.
template <int N, int L, int R, int RT>
__device__ __forceinline__ void wkv7c_fused(int T, int C, const float* __restrict__ r, const float* __restrict__ w,
                                            const float* __restrict__ k, const float* __restrict__ v,
                                            const float* __restrict__ a, const float* __restrict__ b, float* full,
                                            float* tail, int* ready, const float* s_in, float* s_out,
                                            float* __restrict__ y) {
  constexpr int THREADS = R / RT * (N / 4);
  __shared__ __align__(16) Wkv7cFusedShared<N, L, R> sh;
  kernel_entry();
  const int H = C / N, row_blocks = H * N / R;
  if ((int)blockIdx.x < row_blocks) {
    wkv7c_rows_block<N, L, R, RT>(sh.rows, blockIdx.x, T, C, v, full, tail, ready, s_in, s_out, y);
    return;
  }
  const int records = (T + L - 1) / L * H, producers = gridDim.x - row_blocks;
  for (int index = blockIdx.x - row_blocks; index < records; index += producers) {
    wkv7c_prepare_record<N, L, THREADS>(sh.prepare, index / H, index % H, T, C, r, w, k, a, b, full, tail);
    __threadfence();
    __syncthreads();  // the record is written (and the shared memory free for the next)
    if (threadIdx.x == 0) asm volatile("st.relaxed.gpu.global.b32 [%0], %1;" ::"l"(ready + index), "r"(1) : "memory");
  }
}

// ---- The row work on tensor cores (wkv7c_rows_mma; RWKVC_WKV7_CHUNKED_MMA) ----
// A block per 16 rows of a head, N / 16 warps, warp w holding columns [16w, 16w + 16) of the
// rows as mma.m16n8k8 accumulator tiles (8 floats a thread). Every product is a tf32 mma in
// three terms (x = hi + lo, both tf32: hi*hi + hi*lo + lo*hi; the lo*lo term is under f32's
// rounding), so the sums are about as exact as f32 FMAs. An accumulator tile serves as the A
// operand of the next product as it lies: a product only needs A's k order to match B's, so
// k = q and q + 4 of lane (g, q) are taken as columns 2q and 2q + 1 (a0..a3 = c0, c2, c1, c3),
// and B is read in that order. The record stays in global memory (L2): each warp loads the
// fragments it needs of the next chunk into registers while it works on this one. Per chunk:
//   1. the warp's share of u and yr (its 16 columns) -> shared memory; then, needing no other
//      warp, v's part of step 2's tiles and S = S diag(decay) + v (scaled k); barrier;
//   2. warps take the output tiles sa[0..7], sa[8..15], y[0..7], y[8..15] in turn, summing the
//      warps' shares of u (and yr) first; sa to shared memory, y staged; barrier;
//   3. S += sa (scaled b) on the warp's columns; y stored.
__device__ __forceinline__ unsigned wkv7c_tf32(float x) {
  unsigned bits;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(bits) : "f"(x));
  return bits;
}
__device__ __forceinline__ void wkv7c_mma(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// x = hi + lo, both tf32: by cvt.rna (CVT; a conversion, a quarter of the FMA rate) or by integer
// rounding of the bits (hi rounded to nearest, ties away, like cvt.rna; lo truncated to tf32).
template <bool CVT>
__device__ __forceinline__ void wkv7c_split(float x, unsigned& hi, unsigned& lo) {
  if constexpr (CVT) {
    hi = wkv7c_tf32(x);
    lo = wkv7c_tf32(x - __uint_as_float(hi));
  } else {
    hi = (__float_as_uint(x) + 0x1000u) & 0xffffe000u;
    lo = __float_as_uint(x - __uint_as_float(hi)) & 0xffffe000u;
  }
}

// An A operand split in its tf32 high and low parts.
struct Wkv7cSplitA {
  unsigned hi[4], lo[4];
};
template <bool CVT>
__device__ __forceinline__ Wkv7cSplitA wkv7c_split_a(float a0, float a1, float a2, float a3) {
  Wkv7cSplitA s;
  const float a[4] = {a0, a1, a2, a3};
#pragma unroll
  for (int i = 0; i < 4; ++i) wkv7c_split<CVT>(a[i], s.hi[i], s.lo[i]);
  return s;
}
// An accumulator tile as an A operand (columns 2q, 2q + 1 as k = q, q + 4).
template <bool CVT>
__device__ __forceinline__ Wkv7cSplitA wkv7c_split_c(const float (&c)[4]) {
  return wkv7c_split_a<CVT>(c[0], c[2], c[1], c[3]);
}

// big += a.hi b.hi, small += a.hi b.lo + a.lo b.hi.
template <bool CVT>
__device__ __forceinline__ void wkv7c_mma3(float (&big)[4], float (&small)[4], const Wkv7cSplitA& a, float b0, float b1) {
  unsigned b0h, b0l, b1h, b1l;
  wkv7c_split<CVT>(b0, b0h, b0l);
  wkv7c_split<CVT>(b1, b1h, b1l);
  wkv7c_mma(small, a.lo, b0h, b1h);
  wkv7c_mma(small, a.hi, b0l, b1l);
  wkv7c_mma(big, a.hi, b0h, b1h);
}

// What a warp reads of one chunk's record and v, in the order it uses it (TILES: the output
// tiles of step 2 it takes).
template <int TILES>
struct Wkv7cMmaFragments {
  float2 project[4][2];     // [a 0-7, a 8-15, r 0-7, r 8-15][k tile]: B of step 1
  float2 mix[TILES][4];     // [tile][k tile: u 0-7, u 8-15, v 0-7, v 8-15]: B of step 2
  float update[2][4][2];    // [n tile][k tile: sa 0-7, sa 8-15, v 0-7, v 8-15][b0, b1]: B of step 3
  float2 decay[2];          // [n tile]
  float v[2][4];            // [k tile]: A of v (rows g, g + 8; tokens 2q, 2q + 1)
};

__device__ __forceinline__ float2 wkv7c_load2(const float* p) { return __ldg(reinterpret_cast<const float2*>(p)); }

// Where a thread's fragments lie in a record (floats from its start) and in v: each load is then
// one of these plus a constant.
template <int TILES>
struct Wkv7cMmaOffsets {
  int project, update, decay, mix[TILES][4];
  const float* v;  // row i0 + g of the head's v, token 2q
};

template <int N, int L, int TILES>
__device__ __forceinline__ Wkv7cMmaOffsets<TILES> wkv7c_mma_offsets(int warp, int C, int i0, const float* v) {
  using Layout = Wkv7cLayout<N, L>;
  constexpr int WARPS = N / 16;
  const int lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
  Wkv7cMmaOffsets<TILES> o;
  o.project = g * N + 16 * warp + 2 * q;
  o.update = 2 * q * N + 16 * warp + g;
  o.decay = Layout::DECAY + 16 * warp + 2 * q;
#pragma unroll
  for (int i = 0; i < TILES; ++i) {
    const int tile = warp + i * WARPS, t = 8 * (tile & 1) + g;
    const int first = tile < 2 ? Layout::W : Layout::PW, second = tile < 2 ? Layout::X : Layout::PXQ;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const int tau = 8 * (k & 1) + 2 * q;
      o.mix[i][k] = (k < 2 ? first : second) + t * L + 4 * wkv7c_swizzle<L>(t, tau / 4) + tau % 4;
    }
  }
  o.v = v + (i64)(2 * q) * C + i0 + g;
  return o;
}

template <int N, int L, int TILES>
__device__ __forceinline__ void wkv7c_mma_load(Wkv7cMmaFragments<TILES>& f, const Wkv7cMmaOffsets<TILES>& o, int chunk,
                                               int T, int C, int h, const float* __restrict__ full,
                                               const float* __restrict__ tail) {
  using Layout = Wkv7cLayout<N, L>;
  const float* record = (chunk < T / L ? full : tail) + wkv7c_record_offset<N, L>(chunk, h, C / N, T);
  const float* project = record + o.project;
#pragma unroll
  for (int n = 0; n < 4; ++n)
#pragma unroll
    for (int k = 0; k < 2; ++k)
      f.project[n][k] = wkv7c_load2(project + (n < 2 ? Layout::SCALED_A : Layout::SCALED_R) + 8 * (n & 1) * N + 8 * k);
#pragma unroll
  for (int i = 0; i < TILES; ++i)
#pragma unroll
    for (int k = 0; k < 4; ++k) f.mix[i][k] = wkv7c_load2(record + o.mix[i][k]);
  const float* update = record + o.update;
#pragma unroll
  for (int n = 0; n < 2; ++n) {
#pragma unroll
    for (int k = 0; k < 4; ++k)
#pragma unroll
      for (int e = 0; e < 2; ++e)
        f.update[n][k][e] = __ldg(update + (k < 2 ? Layout::SCALED_B : Layout::SCALED_K) + (8 * (k & 1) + e) * N + 8 * n);
    f.decay[n] = wkv7c_load2(record + o.decay + 8 * n);
  }
  // v of tokens t + 2q, t + 2q + 1, t + 8 + 2q, t + 9 + 2q (rows g, g + 8): zero past T.
  const int t = chunk * L + 2 * (threadIdx.x & 3);
  const float* v0 = o.v + (i64)chunk * L * C;
  const float* v8 = v0 + 8 * (i64)C;
#pragma unroll
  for (int k = 0; k < 2; ++k)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const float* p = (k == 0 ? v0 : v8) + (e >> 1 ? C : 0) + 8 * (e & 1);
      f.v[k][e] = t + 8 * k + (e >> 1) < T ? __ldg(p) : 0.0f;
    }
}

template <int N>
struct Wkv7cMmaShared {
  float4 share[N / 16][4][32];  // step 1: each warp's u and yr tiles (as its lanes hold them)
  float4 sa[2][32];             // step 2: the sa tiles
  float y[16][17];              // y staged for coalesced stores
};

// After wkv7c_prepare: rows [16 (blockIdx.x % (N / 16)), + 16) of head blockIdx.x / (N / 16); CVT:
// how the operands are split (wkv7c_split).
template <int N, int L, bool CVT>
__device__ __forceinline__ void wkv7c_rows_mma(int T, int C, const float* __restrict__ v, const float* __restrict__ full,
                                               const float* __restrict__ tail, const float* s_in, float* s_out,
                                               float* __restrict__ y) {
  static_assert(L == 16 && N % 16 == 0, "16 tokens a chunk, 16 columns a warp");
  constexpr int WARPS = N / 16, THREADS = 32 * WARPS, TILES = 4 / WARPS;
  static_assert(4 % WARPS == 0, "step 2's four tiles shared evenly");
  __shared__ __align__(16) Wkv7cMmaShared<N> sh;
  kernel_entry();
  const int h = blockIdx.x / (N / 16), i0 = (blockIdx.x % (N / 16)) * 16;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
  const int chunks = (T + L - 1) / L;
  const float* vh = v + (i64)h * N;
  // S[n]: rows g, g + 8; columns 16 warp + 8 n + 2q, + 1.
  float S[2][4];
#pragma unroll
  for (int n = 0; n < 2; ++n)
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const float2 x = *reinterpret_cast<const float2*>(s_in + ((i64)h * N + i0 + g + 8 * half) * N + 16 * warp + 8 * n + 2 * q);
      S[n][2 * half] = x.x;
      S[n][2 * half + 1] = x.y;
    }
  const Wkv7cMmaOffsets<TILES> offsets = wkv7c_mma_offsets<N, L, TILES>(warp, C, i0, vh);
  Wkv7cMmaFragments<TILES> next;
  wkv7c_mma_load<N, L, TILES>(next, offsets, 0, T, C, h, full, tail);
  for (int chunk = 0; chunk < chunks; ++chunk) {
    const Wkv7cMmaFragments<TILES> f = next;
    if (chunk + 1 < chunks) wkv7c_mma_load<N, L, TILES>(next, offsets, chunk + 1, T, C, h, full, tail);
    const int t0 = chunk * L;
    // 1. This warp's columns' share of u (tiles 0, 1) and yr (tiles 2, 3).
    const Wkv7cSplitA s0 = wkv7c_split_c<CVT>(S[0]), s1 = wkv7c_split_c<CVT>(S[1]);
#pragma unroll
    for (int n = 0; n < 4; ++n) {
      float big[4] = {0.0f, 0.0f, 0.0f, 0.0f}, small[2][4] = {};
      wkv7c_mma3<CVT>(big, small[0], s0, f.project[n][0].x, f.project[n][0].y);
      wkv7c_mma3<CVT>(big, small[1], s1, f.project[n][1].x, f.project[n][1].y);
      sh.share[warp][n][lane] = make_float4(big[0] + (small[0][0] + small[1][0]), big[1] + (small[0][1] + small[1][1]),
                                            big[2] + (small[0][2] + small[1][2]), big[3] + (small[0][3] + small[1][3]));
    }
    // What needs no other warp's share, while the others finish theirs: v's part of the tiles
    // of step 2 and of the update (after the decay), in accumulators [k tile parity].
    const Wkv7cSplitA va0 = wkv7c_split_a<CVT>(f.v[0][0], f.v[0][1], f.v[0][2], f.v[0][3]);
    const Wkv7cSplitA va1 = wkv7c_split_a<CVT>(f.v[1][0], f.v[1][1], f.v[1][2], f.v[1][3]);
    float mix_big[TILES][2][4] = {}, mix_small[TILES][2][4] = {};
#pragma unroll
    for (int i = 0; i < TILES; ++i) {
      wkv7c_mma3<CVT>(mix_big[i][0], mix_small[i][0], va0, f.mix[i][2].x, f.mix[i][2].y);
      wkv7c_mma3<CVT>(mix_big[i][1], mix_small[i][1], va1, f.mix[i][3].x, f.mix[i][3].y);
    }
    float update_small[2][2][4] = {};
#pragma unroll
    for (int n = 0; n < 2; ++n) {
      S[n][0] *= f.decay[n].x; S[n][1] *= f.decay[n].y; S[n][2] *= f.decay[n].x; S[n][3] *= f.decay[n].y;
      wkv7c_mma3<CVT>(S[n], update_small[n][0], va0, f.update[n][2][0], f.update[n][2][1]);
      wkv7c_mma3<CVT>(S[n], update_small[n][1], va1, f.update[n][3][0], f.update[n][3][1]);
    }
    __syncthreads();
    // 2. Tile `tile`: sa (0, 1) or y (2, 3) of tokens 8 (tile & 1) .. + 7.
    {
      float u[2][4];
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        float4 sum = sh.share[0][k][lane];
#pragma unroll
        for (int w = 1; w < WARPS; ++w) {
          const float4 x = sh.share[w][k][lane];
          sum.x += x.x; sum.y += x.y; sum.z += x.z; sum.w += x.w;
        }
        u[k][0] = sum.x; u[k][1] = sum.y; u[k][2] = sum.z; u[k][3] = sum.w;
      }
      const Wkv7cSplitA ua0 = wkv7c_split_c<CVT>(u[0]), ua1 = wkv7c_split_c<CVT>(u[1]);
#pragma unroll
      for (int i = 0; i < TILES; ++i) {
        const int tile = warp + i * WARPS;
        if (tile >= 2) {  // yr, summed over the warps, joins a y tile's sums
#pragma unroll
          for (int w = 0; w < WARPS; ++w) {
            const float4 x = sh.share[w][tile][lane];
            mix_small[i][0][0] += x.x; mix_small[i][0][1] += x.y; mix_small[i][0][2] += x.z; mix_small[i][0][3] += x.w;
          }
        }
        wkv7c_mma3<CVT>(mix_big[i][0], mix_small[i][0], ua0, f.mix[i][0].x, f.mix[i][0].y);
        wkv7c_mma3<CVT>(mix_big[i][1], mix_small[i][1], ua1, f.mix[i][1].x, f.mix[i][1].y);
        float out[4];
#pragma unroll
        for (int e = 0; e < 4; ++e)
          out[e] = (mix_big[i][0][e] + mix_big[i][1][e]) + (mix_small[i][0][e] + mix_small[i][1][e]);
        const int tt = 8 * (tile & 1) + 2 * q;
        if (tile < 2) {
          sh.sa[tile][lane] = make_float4(out[0], out[1], out[2], out[3]);
        } else {
          sh.y[tt][g] = out[0];
          sh.y[tt + 1][g] = out[1];
          sh.y[tt][g + 8] = out[2];
          sh.y[tt + 1][g + 8] = out[3];
        }
      }
    }
    __syncthreads();
    // 3. sa's part of the update of the warp's columns.
    {
      float sa[2][4];
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        const float4 x = sh.sa[k][lane];
        sa[k][0] = x.x; sa[k][1] = x.y; sa[k][2] = x.z; sa[k][3] = x.w;
      }
      const Wkv7cSplitA sa0 = wkv7c_split_c<CVT>(sa[0]), sa1 = wkv7c_split_c<CVT>(sa[1]);
#pragma unroll
      for (int n = 0; n < 2; ++n) {
        wkv7c_mma3<CVT>(S[n], update_small[n][0], sa0, f.update[n][0][0], f.update[n][0][1]);
        wkv7c_mma3<CVT>(S[n], update_small[n][1], sa1, f.update[n][1][0], f.update[n][1][1]);
#pragma unroll
        for (int e = 0; e < 4; ++e) S[n][e] += update_small[n][0][e] + update_small[n][1][e];
      }
    }
    for (int e = threadIdx.x; e < L * 16; e += THREADS) {
      const int tt = e / 16, i = e % 16;
      if (t0 + tt < T) y[(i64)(t0 + tt) * C + (i64)h * N + i0 + i] = sh.y[tt][i];
    }
  }
#pragma unroll
  for (int n = 0; n < 2; ++n)
#pragma unroll
    for (int half = 0; half < 2; ++half)
      *reinterpret_cast<float2*>(s_out + ((i64)h * N + i0 + g + 8 * half) * N + 16 * warp + 8 * n + 2 * q) =
          make_float2(S[n][2 * half], S[n][2 * half + 1]);
}
)CUDA";

}  // namespace rwkvc::cuda
