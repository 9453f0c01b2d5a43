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
//     state update), the next chunk's record copied in by cp.async while this one is used.
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
)CUDA";

}  // namespace rwkvc::cuda
