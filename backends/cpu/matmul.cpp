// Matrix products for both weight layouts, split over the pool's threads by output column: each
// thread owns a slice of the weight matrix, which is what one token (M = 1) needs to go parallel.
#include <algorithm>
#include <array>
#include <vector>

#include "backends/cpu/kernels.h"
#include "backends/cpu/thread_pool.h"

namespace rwkvc::cpu {

namespace {

// Below this many multiply-adds per thread, waking a thread costs more than it saves.
constexpr std::int64_t kMinWorkPerThread = 1 << 16;
// Weight rows handled together while every input row passes over them, so they stay in cache.
constexpr std::int64_t kRowTile = 16;

// Calls body(begin, end) on contiguous slices of [0, count), one slice per pool thread.
template <typename F>
void parallel_over(std::int64_t count, std::int64_t work_per_item, F body) {
  std::int64_t threads = std::clamp(count * work_per_item / kMinWorkPerThread, std::int64_t{1},
                                    std::min(parallel_width(), count));
  std::int64_t chunk = (count + threads - 1) / threads;
  run_parallel(threads, [&](std::int64_t slice) {
    std::int64_t begin = slice * chunk;
    if (begin < count) body(begin, std::min(begin + chunk, count));
  });
}

float dot(const float* x, const float* y, std::int64_t n) {
  std::array<float, 8> partial{};  // independent sums let the compiler vectorise the loop
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (std::int64_t j = 0; j < 8; ++j) partial[j] += x[i + j] * y[i + j];
  float sum = 0.0f;
  for (float p : partial) sum += p;
  for (; i < n; ++i) sum += x[i] * y[i];
  return sum;
}

// out[m, n] = a[m, :] . b[n, :] for n in [begin, end).
void matmul_transposed(const float* a, const float* b, std::int64_t m_count, std::int64_t k, std::int64_t n_count,
                       std::int64_t begin, std::int64_t end, float* out) {
  for (std::int64_t tile = begin; tile < end; tile += kRowTile) {
    std::int64_t tile_end = std::min(tile + kRowTile, end);
    for (std::int64_t m = 0; m < m_count; ++m)
      for (std::int64_t n = tile; n < tile_end; ++n) out[m * n_count + n] = dot(a + m * k, b + n * k, k);
  }
}

// out[m, begin:end] = sum over i of a[m, i] * b[i, begin:end]: rows of b stream contiguously.
void matmul_plain(const float* a, const float* b, std::int64_t m_count, std::int64_t k, std::int64_t n_count,
                  std::int64_t begin, std::int64_t end, float* out) {
  for (std::int64_t m = 0; m < m_count; ++m) {
    float* row = out + m * n_count;
    std::fill(row + begin, row + end, 0.0f);
    for (std::int64_t i = 0; i < k; ++i) {
      float scale = a[m * k + i];
      const float* b_row = b + i * n_count;
      for (std::int64_t n = begin; n < end; ++n) row[n] += scale * b_row[n];
    }
  }
}

}  // namespace

void matmul(std::span<const float> a, std::span<const float> b, std::int64_t k, std::int64_t n, bool transpose_b,
            std::span<float> out) {
  if (n == 0) return;
  auto m = static_cast<std::int64_t>(out.size()) / n;
  parallel_over(n, m * k, [&](std::int64_t begin, std::int64_t end) {
    if (transpose_b) matmul_transposed(a.data(), b.data(), m, k, n, begin, end, out.data());
    else matmul_plain(a.data(), b.data(), m, k, n, begin, end, out.data());
  });
}

}  // namespace rwkvc::cpu
