#include "backends/cuda/kernel_sources.h"

namespace rwkvc::cuda {

// WKV7: one block per head, one thread per row i of the head's N x N state, held in registers.
// Each row evolves on its own (sa_i needs only row i), so threads never exchange state; they
// share the token's r, w, k, a, b, v, staged in shared memory a chunk of tokens at a time (two
// barriers per chunk). A thread reads its row before it writes it: the state may be updated in
// place (s_in == s_out).
// WKV4: one thread per channel, sequential over the tokens, likewise in place.
const char* const kWkvSource = R"CUDA(
#define WKV7_CHUNK 16
template <int N>
__device__ __forceinline__ void wkv7_heads(int T, int C, const float* __restrict__ r, const float* __restrict__ w,
                                           const float* __restrict__ k, const float* __restrict__ v,
                                           const float* __restrict__ a, const float* __restrict__ b, const float* s_in,
                                           float* s_out, float* __restrict__ y) {
  __shared__ float sr[WKV7_CHUNK][N], sw[WKV7_CHUNK][N], sk[WKV7_CHUNK][N], sa[WKV7_CHUNK][N], sb[WKV7_CHUNK][N],
      sv[WKV7_CHUNK][N];
  const int h = blockIdx.x, i = threadIdx.x;
  float S[N];
  const float* row_in = s_in + ((i64)h * N + i) * N;
#pragma unroll
  for (int j = 0; j < N; ++j) S[j] = row_in[j];
  for (int t0 = 0; t0 < T; t0 += WKV7_CHUNK) {
    const int count = min(WKV7_CHUNK, T - t0);
    __syncthreads();  // the previous chunk is consumed
    for (int q = i; q < count * N; q += N) {
      const int tt = q / N, j = q % N;
      const i64 at = (i64)(t0 + tt) * C + (i64)h * N + j;
      sr[tt][j] = r[at]; sw[tt][j] = w[at]; sk[tt][j] = k[at];
      sa[tt][j] = a[at]; sb[tt][j] = b[at]; sv[tt][j] = v[at];
    }
    __syncthreads();
    for (int tt = 0; tt < count; ++tt) {
      float s0 = 0.0f, s1 = 0.0f;  // two partial sums: a shorter dependency chain
#pragma unroll
      for (int j = 0; j < N; j += 2) {
        s0 = fmaf(S[j], sa[tt][j], s0);
        s1 = fmaf(S[j + 1], sa[tt][j + 1], s1);
      }
      const float sai = s0 + s1, vi = sv[tt][i];
      float y0 = 0.0f, y1 = 0.0f;
#pragma unroll
      for (int j = 0; j < N; j += 2) {
        S[j] = fmaf(S[j], sw[tt][j], fmaf(sai, sb[tt][j], vi * sk[tt][j]));
        S[j + 1] = fmaf(S[j + 1], sw[tt][j + 1], fmaf(sai, sb[tt][j + 1], vi * sk[tt][j + 1]));
        y0 = fmaf(S[j], sr[tt][j], y0);
        y1 = fmaf(S[j + 1], sr[tt][j + 1], y1);
      }
      y[(i64)(t0 + tt) * C + (i64)h * N + i] = y0 + y1;
    }
  }
  float* row_out = s_out + ((i64)h * N + i) * N;
#pragma unroll
  for (int j = 0; j < N; ++j) row_out[j] = S[j];
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
