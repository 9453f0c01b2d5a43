#include "backends/cuda/kernel_sources.h"

namespace rwkvc::cuda {

// WKV7 for long prompts, L tokens at a time (the algebra: tests/cuda/wkv7_chunked_reference.h).
// Inside a chunk the tokens' effects on a row of the state are small matrix products, so no
// chain runs from token to token: the sequential kernel spends its time on that chain. A block
// owns R rows of one head (the rows never mix) and walks the chunks in order; per chunk:
//   1. the cumulative log2 decays of each column;
//   2. the pair matrices A, B, P, Q [L, L] (every block of the head computes the same ones: they
//      cost less than a round trip through memory between two kernels);
//   3. the vectors scaled by their decays from the chunk's start or to its end;
//   4. one warp solves (I - A) W = I and (I - A) X = B and forms P W and P X + Q while every row
//      projects its state on the scaled a and r (8 lanes a row, float4 column groups, summed by a
//      reduce-scatter that leaves each lane L / 4 finished sums);
//   5. sa_t and y_t of each row and token: length-L dot products;
//   6. the state update, in the registers of the lanes that own the columns.
// The next chunk's vectors are loaded into registers while this one is computed. A shorter last
// chunk is padded with tokens that change nothing (w = 1, everything else 0). The state row is
// read before it is written by the threads that own it: s_in may be s_out.
const char* const kWkv7ChunkedSource = R"CUDA(
#define WKV7C_LANES 8

template <int N, int L, int R>
struct Wkv7ChunkedShared {
  float r[L][N], w[L][N], k[L][N], a[L][N], b[L][N], c[L][N];
  float v[L][R];
  float pair[4][L][L + 1];  // A, B, P, Q (rows padded: the solve's lanes read along a row)
  float mix[4][L][L + 1];   // W, X, P W, P X + Q
  float u[L][R], yr[L][R], sa[L][R];
  float decay[N];
};

template <int N, int L, int R>
struct Wkv7ChunkedNext {
  static constexpr int PER = L * N / 4 / (R * WKV7C_LANES);  // float4s of each vector a thread loads
  float4 r[PER], w[PER], k[PER], a[PER], b[PER], v;
};

// Needs 16-byte aligned vectors (checked by the step; C = H * N is a multiple of 4).
template <int N, int L, int R>
__device__ __forceinline__ void wkv7c_fetch(Wkv7ChunkedNext<N, L, R>& next, int t0, int T, int C, int h, int i0,
                                            const float* __restrict__ r, const float* __restrict__ w,
                                            const float* __restrict__ k, const float* __restrict__ v,
                                            const float* __restrict__ a, const float* __restrict__ b) {
  constexpr int Q = N / 4, THREADS = R * WKV7C_LANES;
  const float4 zero = {0.0f, 0.0f, 0.0f, 0.0f}, one = {1.0f, 1.0f, 1.0f, 1.0f};
#pragma unroll
  for (int m = 0; m < Wkv7ChunkedNext<N, L, R>::PER; ++m) {
    const int e = threadIdx.x + m * THREADS, tt = e / Q, q = e % Q;
    const bool real = t0 + tt < T;
    const i64 at = (i64)(t0 + tt) * C + (i64)h * N + 4 * q;
    next.r[m] = real ? *reinterpret_cast<const float4*>(r + at) : zero;
    next.w[m] = real ? *reinterpret_cast<const float4*>(w + at) : one;
    next.k[m] = real ? *reinterpret_cast<const float4*>(k + at) : zero;
    next.a[m] = real ? *reinterpret_cast<const float4*>(a + at) : zero;
    next.b[m] = real ? *reinterpret_cast<const float4*>(b + at) : zero;
  }
  next.v = zero;
  if (threadIdx.x < L * R / 4) {
    const int tt = threadIdx.x / (R / 4), q = threadIdx.x % (R / 4);
    if (t0 + tt < T) next.v = *reinterpret_cast<const float4*>(v + (i64)(t0 + tt) * C + (i64)h * N + i0 + 4 * q);
  }
}

template <int N, int L, int R>
__device__ __forceinline__ void wkv7c_stash(Wkv7ChunkedShared<N, L, R>& sh, const Wkv7ChunkedNext<N, L, R>& next) {
  constexpr int Q = N / 4, THREADS = R * WKV7C_LANES;
#pragma unroll
  for (int m = 0; m < Wkv7ChunkedNext<N, L, R>::PER; ++m) {
    const int e = threadIdx.x + m * THREADS, tt = e / Q, q = e % Q;
    reinterpret_cast<float4*>(sh.r[tt])[q] = next.r[m];
    reinterpret_cast<float4*>(sh.w[tt])[q] = next.w[m];
    reinterpret_cast<float4*>(sh.k[tt])[q] = next.k[m];
    reinterpret_cast<float4*>(sh.a[tt])[q] = next.a[m];
    reinterpret_cast<float4*>(sh.b[tt])[q] = next.b[m];
  }
  if (threadIdx.x < L * R / 4)
    reinterpret_cast<float4*>(sh.v[threadIdx.x / (R / 4)])[threadIdx.x % (R / 4)] = next.v;
}

// A thread per pair (t, tau): the strictly lower ones first (the costly ones, one a thread),
// then the diagonal. Each walks the columns from its own offset (no two lanes of a quarter warp
// on one bank).
template <int N, int L, int R>
__device__ __forceinline__ void wkv7c_pairs(Wkv7ChunkedShared<N, L, R>& sh) {
  constexpr int Q = N / 4, LOWER = L * (L - 1) / 2, JOBS = LOWER + L, THREADS = R * WKV7C_LANES;
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
// then P W and P X + Q.
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

// Lanes s and s ^ OFFSET each keep one half of `acc` (the upper half where bit OFFSET of s is
// set) and add the partner's copy of it.
template <int HALF, int OFFSET>
__device__ __forceinline__ void wkv7c_halve(float* acc, int s) {
  const bool upper = (s & OFFSET) != 0;
#pragma unroll
  for (int m = 0; m < HALF; ++m) {
    const float send = upper ? acc[m] : acc[m + HALF];
    const float keep = upper ? acc[m + HALF] : acc[m];
    acc[m] = keep + __shfl_xor_sync(0xffffffffu, send, OFFSET);
  }
}

// u_t = S_i . (scaled a_t), yr_t = S_i . (scaled r_t) for every token of the chunk; the 8 lanes
// of the row reduce-scatter the 2L sums: lane s ends with sums s * L/4 .. s * L/4 + L/4 - 1.
template <int N, int L, int R>
__device__ __forceinline__ void wkv7c_project(Wkv7ChunkedShared<N, L, R>& sh, const float4 (&S)[N / (4 * WKV7C_LANES)],
                                              int il, int s) {
  constexpr int G = N / (4 * WKV7C_LANES), Q = N / 4;
  float acc[2 * L];
#pragma unroll
  for (int t = 0; t < L; ++t) {
    float u = 0.0f, yr = 0.0f;
#pragma unroll
    for (int g = 0; g < G; ++g) {
      const int q = g * WKV7C_LANES + s;
      const float4 av = reinterpret_cast<const float4*>(sh.a[t])[q], rv = reinterpret_cast<const float4*>(sh.r[t])[q];
      u = fmaf(S[g].x, av.x, fmaf(S[g].y, av.y, fmaf(S[g].z, av.z, fmaf(S[g].w, av.w, u))));
      yr = fmaf(S[g].x, rv.x, fmaf(S[g].y, rv.y, fmaf(S[g].z, rv.z, fmaf(S[g].w, rv.w, yr))));
    }
    acc[t] = u;
    acc[L + t] = yr;
  }
  (void)Q;
  wkv7c_halve<L, 4>(acc, s);
  wkv7c_halve<L / 2, 2>(acc, s);
  wkv7c_halve<L / 4, 1>(acc, s);
  constexpr int PER = L / 4;
  const int first = s * PER;  // of the 2L sums: u_0 .. u_{L-1}, then yr_0 .. yr_{L-1}
#pragma unroll
  for (int m = 0; m < PER; ++m) {
    const int index = first + m;
    if (index < L) sh.u[index][il] = acc[m];
    else sh.yr[index - L][il] = acc[m];
  }
}

template <int N, int L, int R>
__device__ __forceinline__ void wkv7_chunked(int T, int C, const float* __restrict__ r, const float* __restrict__ w,
                                             const float* __restrict__ k, const float* __restrict__ v,
                                             const float* __restrict__ a, const float* __restrict__ b,
                                             const float* s_in, float* s_out, float* __restrict__ y) {
  constexpr int G = N / (4 * WKV7C_LANES), Q = N / 4, THREADS = R * WKV7C_LANES;
  static_assert(N % (4 * WKV7C_LANES) == 0 && N % R == 0 && R % 4 == 0, "rows and column groups");
  static_assert(L % 8 == 0 && L <= 16 && (L * N / 4) % THREADS == 0 && L * R / 4 <= THREADS, "chunk shape");
  __shared__ __align__(16) Wkv7ChunkedShared<N, L, R> sh;
  constexpr int parts = N / R;
  const int h = blockIdx.x / parts, i0 = (blockIdx.x % parts) * R;
  const int il = threadIdx.x / WKV7C_LANES, s = threadIdx.x % WKV7C_LANES, i = i0 + il;
  kernel_entry();
  float4 S[G];
  const float4* row_in = reinterpret_cast<const float4*>(s_in + ((i64)h * N + i) * N);
#pragma unroll
  for (int g = 0; g < G; ++g) S[g] = row_in[g * WKV7C_LANES + s];
  Wkv7ChunkedNext<N, L, R> next;
  wkv7c_fetch<N, L, R>(next, 0, T, C, h, i0, r, w, k, v, a, b);
  for (int t0 = 0; t0 < T; t0 += L) {
    __syncthreads();  // the previous chunk is done with the shared vectors
    wkv7c_stash<N, L, R>(sh, next);
    if (t0 + L < T) wkv7c_fetch<N, L, R>(next, t0 + L, T, C, h, i0, r, w, k, v, a, b);
    __syncthreads();
    // 1. Cumulative log2 decays (clamped: differences of sums stay finite).
    for (int j = threadIdx.x; j < N; j += THREADS) {
      float sum = 0.0f;
#pragma unroll
      for (int t = 0; t < L; ++t) {
        sum += fmaxf(log2f(sh.w[t][j]), -100.0f);
        sh.c[t][j] = sum;
      }
      sh.decay[j] = exp2f(sum);
    }
    __syncthreads();
    // 2. The pair matrices, from the vectors as they are.
    wkv7c_pairs<N, L, R>(sh);
    __syncthreads();
    // 3. a and r scaled by the decay from the chunk's start, b and k by the decay to its end.
    for (int e = threadIdx.x; e < L * N; e += THREADS) {
      const int t = e / N, j = e % N;
      const float ct = sh.c[t][j], before = t > 0 ? sh.c[t - 1][j] : 0.0f, to_end = exp2f(sh.c[L - 1][j] - ct);
      sh.a[t][j] *= exp2f(before);
      sh.r[t][j] *= exp2f(ct);
      sh.b[t][j] *= to_end;
      sh.k[t][j] *= to_end;
    }
    __syncthreads();
    // 4. The solve (warp 0) and every row's projections.
    if (threadIdx.x < 32) wkv7c_solve<L>(sh.pair, sh.mix);
    wkv7c_project<N, L, R>(sh, S, il, s);
    __syncthreads();
    // 5. sa_t and y_t of this row, tokens s, s + 8, ...
#pragma unroll
    for (int m = 0; m < L / WKV7C_LANES; ++m) {
      const int t = s + m * WKV7C_LANES;
      float sat = 0.0f, yt = sh.yr[t][il];
#pragma unroll
      for (int tau = 0; tau < L; ++tau) {
        const float ut = sh.u[tau][il], vt = sh.v[tau][il];
        sat = fmaf(sh.mix[0][t][tau], ut, fmaf(sh.mix[1][t][tau], vt, sat));
        yt = fmaf(sh.mix[2][t][tau], ut, fmaf(sh.mix[3][t][tau], vt, yt));
      }
      sh.sa[t][il] = sat;
      if (t0 + t < T) y[(i64)(t0 + t) * C + (i64)h * N + i] = yt;
    }
    __syncthreads();
    // 6. S_i = S_i diag(decay) + sum_t sa_t (scaled b_t) + v_t (scaled k_t).
#pragma unroll
    for (int g = 0; g < G; ++g) {
      const int q = g * WKV7C_LANES + s;
      const float4 d = reinterpret_cast<const float4*>(sh.decay)[q];
      float4 x = S[g];
      x.x *= d.x; x.y *= d.y; x.z *= d.z; x.w *= d.w;
#pragma unroll
      for (int t = 0; t < L; ++t) {
        const float sat = sh.sa[t][il], vt = sh.v[t][il];
        const float4 bv = reinterpret_cast<const float4*>(sh.b[t])[q], kv = reinterpret_cast<const float4*>(sh.k[t])[q];
        x.x = fmaf(sat, bv.x, fmaf(vt, kv.x, x.x));
        x.y = fmaf(sat, bv.y, fmaf(vt, kv.y, x.y));
        x.z = fmaf(sat, bv.z, fmaf(vt, kv.z, x.z));
        x.w = fmaf(sat, bv.w, fmaf(vt, kv.w, x.w));
      }
      S[g] = x;
    }
  }
  (void)Q;
  float4* row_out = reinterpret_cast<float4*>(s_out + ((i64)h * N + i) * N);
#pragma unroll
  for (int g = 0; g < G; ++g) row_out[g * WKV7C_LANES + s] = S[g];
}
)CUDA";

}  // namespace rwkvc::cuda
