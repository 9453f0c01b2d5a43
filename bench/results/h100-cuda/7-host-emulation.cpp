// Host emulation of the chunked WKV7 kernels: each CUDA thread a std::thread, barriers for
// __syncthreads/__syncwarp, an exchange array for shuffles. Checks against the CPU recurrence.
#include <barrier>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <random>
#include <span>
#include <thread>
#include <vector>
#include <algorithm>

typedef long long i64;
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) float2 { float x, y; };
struct Dim3 { int x = 0, y = 0, z = 0; };
#include <atomic>
thread_local Dim3 threadIdx, blockIdx, gridDim;
struct BlockState {
  std::unique_ptr<std::barrier<>> block;
  std::vector<std::unique_ptr<std::barrier<>>> warps;
  float exchange[32][32];
  alignas(16) char shared[65536];
};
thread_local BlockState* me;
template <typename T> T& emu_shared() { return *reinterpret_cast<T*>(me->shared); }
inline void __syncthreads() { me->block->arrive_and_wait(); }
inline void __syncwarp() { me->warps[threadIdx.x / 32]->arrive_and_wait(); }
inline float __shfl_xor_sync(unsigned, float v, int off) {
  int w = threadIdx.x / 32, l = threadIdx.x % 32;
  me->exchange[w][l] = v;
  me->warps[w]->arrive_and_wait();
  float r = me->exchange[w][l ^ off];
  me->warps[w]->arrive_and_wait();
  return r;
}
inline void __nanosleep(int) { std::this_thread::yield(); }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void kernel_entry() {}
using std::exp2f; using std::log2f; using std::fmaf; using std::fmaxf;
#include "kernels.inc"

// Blocks `together` at a time (all of them for the fused kernel, whose blocks wait on others).
void launch(Dim3 grid, int threads, const std::function<void()>& body, int together = 1) {
  int gy = std::max(grid.y, 1), count = grid.x * gy;
  for (int first = 0; first < count; first += together) {
    int n = std::min(together, count - first);
    std::vector<std::unique_ptr<BlockState>> blocks;
    std::vector<std::thread> pool;
    for (int b = 0; b < n; ++b) {
      blocks.push_back(std::make_unique<BlockState>());
      blocks.back()->block = std::make_unique<std::barrier<>>(threads);
      for (int w = 0; w < threads / 32; ++w) blocks.back()->warps.push_back(std::make_unique<std::barrier<>>(32));
    }
    for (int b = 0; b < n; ++b) {
      int id = first + b;
      BlockState* state = blocks[b].get();
      for (int t = 0; t < threads; ++t)
        pool.emplace_back([=, &body] {
          me = state; threadIdx = {t, 0, 0}; blockIdx = {id % grid.x, id / grid.x, 0}; gridDim = {grid.x, gy, 1};
          body();
        });
    }
    for (auto& th : pool) th.join();
  }
}

// The sequential recurrence (as the CPU backend computes it).
void wkv7_seq(int T, int H, int N, const std::vector<float>& r, const std::vector<float>& w, const std::vector<float>& k,
              const std::vector<float>& v, const std::vector<float>& a, const std::vector<float>& b, std::vector<float>& S,
              std::vector<float>& y) {
  int C = H * N;
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < N; ++i) {
        float* s = &S[((size_t)h * N + i) * N];
        double sa = 0;
        for (int j = 0; j < N; ++j) sa += s[j] * a[t * C + h * N + j];
        double yy = 0;
        for (int j = 0; j < N; ++j) {
          int c = t * C + h * N + j;
          s[j] = s[j] * w[c] + (float)sa * b[c] + v[t * C + h * N + i] * k[c];
          yy += s[j] * r[c];
        }
        y[t * C + h * N + i] = (float)yy;
      }
}

template <int N, int R, int RT>
double run(int T, int H, float decay_lo, float decay_hi, unsigned seed, int producers = 0) {
  constexpr int L = 16;
  int C = H * N;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1), dw(decay_lo, decay_hi), gate(0.05f, 1);
  std::vector<float> r(T * C), w(T * C), k(T * C), v(T * C), a(T * C), b(T * C);
  for (int i = 0; i < T * C; ++i) { r[i] = u(rng); k[i] = u(rng); v[i] = u(rng); w[i] = dw(rng); }
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < H; ++h) {
      float norm = 0; std::vector<float> kk(N);
      for (auto& x : kk) { x = u(rng); norm += x * x; }
      norm = std::sqrt(norm);
      for (int j = 0; j < N; ++j) { a[t * C + h * N + j] = -kk[j] / norm; b[t * C + h * N + j] = kk[j] / norm * gate(rng); }
    }
  std::vector<float> S(H * N * N);
  for (auto& x : S) x = u(rng);
  std::vector<float> S2 = S, y(T * C), y2(T * C, -7);
  wkv7_seq(T, H, N, r, w, k, v, a, b, S, y);
  using Layout = Wkv7cLayout<N, L>;
  std::vector<float> full((size_t)(T / L) * H * Layout::SIZE + 1, NAN), tail(H * Layout::SIZE, NAN);
  int chunks = (T + L - 1) / L;
  constexpr int THREADS = R / RT * (N / 4);
  if (producers == 0) {
    launch({chunks, H, 0}, 128, [&] { wkv7c_prepare<N, L, 128>(T, C, r.data(), w.data(), k.data(), a.data(), b.data(), full.data(), tail.data()); });
    launch({H * N / R, 1, 0}, THREADS, [&] { wkv7c_rows<N, L, R, RT>(T, C, v.data(), full.data(), tail.data(), S2.data(), S2.data(), y2.data()); });
  } else {
    std::vector<int> ready(chunks * H, 0);
    int blocks = H * N / R + producers;
    launch({blocks, 1, 0}, THREADS, [&] { wkv7c_fused<N, L, R, RT>(T, C, r.data(), w.data(), k.data(), v.data(), a.data(), b.data(), full.data(), tail.data(), ready.data(), S2.data(), S2.data(), y2.data()); }, blocks);
  }
  double ey = 0, my = 0, es = 0, ms = 0;
  for (int i = 0; i < T * C; ++i) { ey = std::max(ey, (double)std::fabs(y[i] - y2[i])); my = std::max(my, (double)std::fabs(y[i])); }
  for (size_t i = 0; i < S.size(); ++i) { es = std::max(es, (double)std::fabs(S[i] - S2[i])); ms = std::max(ms, (double)std::fabs(S[i])); }
  std::printf("%s N %d R %d RT %d T %d decays [%g, %g]: y %.3g (rel %.3g), state %.3g (rel %.3g)\n", producers ? "fused" : "split", N, R, RT, T, decay_lo, decay_hi, ey, ey / my, es, es / ms);
  return std::max(ey / my, es / ms);
}

int main(int argc, char**) {
  double worst = 0;
  if (argc > 1) {
    for (int T : {5, 37, 80})
      worst = std::max({worst, run<64, 16, 2>(T, 2, 0.55f, 1.0f, T, 3), run<32, 16, 2>(T, 3, 0.55f, 1.0f, T + 1, 2)});
    worst = std::max(worst, run<64, 16, 2>(48, 2, 1e-7f, 0.02f, 3, 1));
    worst = std::max(worst, run<64, 8, 1>(37, 2, 0.55f, 1.0f, 7, 5));
    std::printf("worst %.3g %s\n", worst, worst < 1e-4 ? "OK" : "FAIL");
    return 0;
  }
  for (int T : {5, 37, 48})
    worst = std::max({worst, run<64, 16, 2>(T, 2, 0.55f, 1.0f, T), run<32, 16, 2>(T, 3, 0.55f, 1.0f, T + 1)});
  worst = std::max(worst, run<64, 16, 2>(37, 2, 1e-7f, 0.02f, 3));
  worst = std::max(worst, run<64, 16, 2>(37, 2, 0.9999f, 1.0f, 4));
  worst = std::max(worst, run<64, 16, 1>(37, 2, 0.55f, 1.0f, 5));
  worst = std::max(worst, run<64, 16, 4>(37, 2, 0.55f, 1.0f, 6));
  worst = std::max(worst, run<64, 8, 1>(37, 2, 0.55f, 1.0f, 7));
  worst = std::max(worst, run<32, 8, 2>(37, 2, 0.55f, 1.0f, 9));
  std::printf("worst %.3g %s\n", worst, worst < 1e-4 ? "OK" : "FAIL");
}
