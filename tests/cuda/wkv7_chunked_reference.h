// The chunked (parallel-in-time) form of the RWKV-7 recurrence that the CUDA kernels
// wkv7c_prepare and wkv7c_rows (backends/cuda/kernels_wkv7_chunked.cpp) compute, written plainly
// on the host so that the algebra can be checked against the sequential recurrence without a
// device.
//
// One head, one row s of its state (the rows never mix), tokens t = 0 .. L-1 of a chunk:
//   s_t = s_{t-1} diag(w_t) + sa_t b_t + v_t k_t,  sa_t = s_{t-1} . a_t,  y_t = s_t . r_t.
// With c_t = sum_{u<=t} log2 w_u (c_{-1} = 0) and the decay between two tokens
// 2^(c_t - c_tau) <= 1 (never a quotient of two products, which underflows):
//   s_t = s_0 (.) 2^c_t + sum_{tau<=t} (sa_tau b_tau + v_tau k_tau) (.) 2^(c_t - c_tau)
// so, for tau < t, with e = 2^(c_{t-1} - c_tau) and f = e w_t (= 2^(c_t - c_tau)):
//   A[t][tau] = sum_j a_t b_tau e,  B[t][tau] = sum_j a_t k_tau e,
//   P[t][tau] = sum_j r_t b_tau f,  Q[t][tau] = sum_j r_t k_tau f,  P[t][t] = r_t.b_t,  Q[t][t] = r_t.k_t;
//   sa = u + A sa + B v            with u_t = s_0 . (a_t (.) 2^c_{t-1})
//      = W u + X v                 with W = (I - A)^-1, X = W B (A strictly lower: forward substitution)
//   y  = yr + P sa + Q v = yr + (P W) u + (P X + Q) v    with yr_t = s_0 . (r_t (.) 2^c_t)
//   s_L = s_0 (.) 2^c_{L-1} + sum_t sa_t (b_t (.) 2^(c_{L-1} - c_t)) + v_t (k_t (.) 2^(c_{L-1} - c_t)).
// The matrices depend on the chunk's vectors alone (shared by every row of the head: the
// prepare kernel writes them, with W, X, P W, P X + Q, the scaled vectors and the chunk's decay,
// as one record per chunk and head); a row's work is a few small matrix-vector products with no
// chain from token to token. A last, shorter chunk is padded with tokens that change nothing
// (w = 1, everything else 0).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace rwkvc::test {

// log2 of a decay, kept finite so that differences of sums never become inf - inf; a factor
// of 2^-100 between two tokens is zero for every purpose (the kernel clamps the same way).
inline float clamped_log2_decay(float w) { return std::max(std::log2(w), -100.0f); }

struct Wkv7Inputs {
  std::span<const float> r, w, k, v, a, b;  // each [T, H * N]
};

// Same contract as the sequential recurrence (backends/cpu/wkv7.cpp): state [H, N, N] updated in
// place, y [T, H * N]; `chunk` tokens at a time.
inline void wkv7_chunked_reference(const Wkv7Inputs& in, std::size_t n, std::size_t chunk, std::span<float> state,
                                   std::span<float> y) {
  const std::size_t heads = state.size() / (n * n), channels = heads * n, steps = y.size() / channels;
  const std::size_t L = chunk;
  std::vector<float> r(L * n), w(L * n), k(L * n), a(L * n), b(L * n), c(L * n), v(L * n);
  auto at = [&](std::vector<float>& m, std::size_t t, std::size_t j) -> float& { return m[t * n + j]; };
  std::vector<float> A(L * L), B(L * L), P(L * L), Q(L * L), W(L * L), X(L * L), PW(L * L), PXQ(L * L);
  auto mat = [&](std::vector<float>& m, std::size_t t, std::size_t tau) -> float& { return m[t * L + tau]; };
  for (std::size_t t0 = 0; t0 < steps; t0 += L) {
    for (std::size_t h = 0; h < heads; ++h) {
      // The chunk's vectors of this head, padded.
      for (std::size_t t = 0; t < L; ++t)
        for (std::size_t j = 0; j < n; ++j) {
          bool real = t0 + t < steps;
          std::size_t g = (t0 + t) * channels + h * n + j;
          at(r, t, j) = real ? in.r[g] : 0.0f;
          at(w, t, j) = real ? in.w[g] : 1.0f;
          at(k, t, j) = real ? in.k[g] : 0.0f;
          at(a, t, j) = real ? in.a[g] : 0.0f;
          at(b, t, j) = real ? in.b[g] : 0.0f;
          at(v, t, j) = real ? in.v[g] : 0.0f;  // v_t of row j
        }
      for (std::size_t j = 0; j < n; ++j) {
        float sum = 0.0f;
        for (std::size_t t = 0; t < L; ++t) at(c, t, j) = sum += clamped_log2_decay(at(w, t, j));
      }
      // The pair matrices.
      std::fill(A.begin(), A.end(), 0.0f);
      std::fill(B.begin(), B.end(), 0.0f);
      std::fill(P.begin(), P.end(), 0.0f);
      std::fill(Q.begin(), Q.end(), 0.0f);
      for (std::size_t t = 0; t < L; ++t)
        for (std::size_t tau = 0; tau <= t; ++tau)
          for (std::size_t j = 0; j < n; ++j) {
            if (tau == t) {
              mat(P, t, t) += at(r, t, j) * at(b, t, j);
              mat(Q, t, t) += at(r, t, j) * at(k, t, j);
              continue;
            }
            float e = std::exp2(at(c, t - 1, j) - at(c, tau, j)), f = e * at(w, t, j);
            mat(A, t, tau) += at(a, t, j) * at(b, tau, j) * e;
            mat(B, t, tau) += at(a, t, j) * at(k, tau, j) * e;
            mat(P, t, tau) += at(r, t, j) * at(b, tau, j) * f;
            mat(Q, t, tau) += at(r, t, j) * at(k, tau, j) * f;
          }
      // W = (I - A)^-1 and X = W B by forward substitution, column by column.
      for (std::size_t col = 0; col < L; ++col) {
        for (std::size_t t = 0; t < L; ++t) {
          float wv = t == col ? 1.0f : 0.0f, xv = t > col ? mat(B, t, col) : 0.0f;
          for (std::size_t tau = 0; tau < t; ++tau) {
            wv += mat(A, t, tau) * mat(W, tau, col);
            xv += mat(A, t, tau) * mat(X, tau, col);
          }
          mat(W, t, col) = wv;
          mat(X, t, col) = xv;
        }
        for (std::size_t t = 0; t < L; ++t) {
          float pw = 0.0f, pxq = t >= col ? mat(Q, t, col) : 0.0f;
          for (std::size_t tau = 0; tau <= t; ++tau) {
            pw += mat(P, t, tau) * mat(W, tau, col);
            pxq += mat(P, t, tau) * mat(X, tau, col);
          }
          mat(PW, t, col) = pw;
          mat(PXQ, t, col) = pxq;
        }
      }
      // Each row.
      std::vector<float> u(L), yr(L), sa(L);
      for (std::size_t i = 0; i < n; ++i) {
        float* s = state.data() + (h * n + i) * n;
        for (std::size_t t = 0; t < L; ++t) {
          u[t] = yr[t] = 0.0f;
          for (std::size_t j = 0; j < n; ++j) {
            float before = t > 0 ? std::exp2(at(c, t - 1, j)) : 1.0f;
            u[t] += s[j] * at(a, t, j) * before;
            yr[t] += s[j] * at(r, t, j) * std::exp2(at(c, t, j));
          }
        }
        for (std::size_t t = 0; t < L; ++t) {
          float sat = 0.0f, yt = yr[t];
          for (std::size_t tau = 0; tau < L; ++tau) {
            sat += mat(W, t, tau) * u[tau] + mat(X, t, tau) * at(v, tau, i);
            yt += mat(PW, t, tau) * u[tau] + mat(PXQ, t, tau) * at(v, tau, i);
          }
          sa[t] = sat;
          if (t0 + t < steps) y[(t0 + t) * channels + h * n + i] = yt;
        }
        for (std::size_t j = 0; j < n; ++j) {
          float last = at(c, L - 1, j), next = s[j] * std::exp2(last);
          for (std::size_t t = 0; t < L; ++t) {
            float f = std::exp2(last - at(c, t, j));
            next += sa[t] * at(b, t, j) * f + at(v, t, i) * at(k, t, j) * f;
          }
          s[j] = next;
        }
      }
    }
  }
}

}  // namespace rwkvc::test
