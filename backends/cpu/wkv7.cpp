// The RWKV-7 state recurrence (docs/equations.md, RWKV-7), one head and one token at a time:
//   sa_i = sum_j S_ij a_j;  S_ij = S_ij w_j + sa_i b_j + v_i k_j;  y_i = sum_j S_ij r_j.
#include "backends/cpu/kernels.h"

namespace rwkvc::cpu {

void wkv7(const Wkv7Sequences& in, std::int64_t head_size, std::span<float> state, std::span<float> y) {
  auto n = static_cast<std::size_t>(head_size);
  std::size_t heads = n > 0 ? state.size() / (n * n) : 0;
  std::size_t channels = heads * n;
  std::size_t steps = channels > 0 ? y.size() / channels : 0;
  for (std::size_t t = 0; t < steps; ++t) {
    for (std::size_t h = 0; h < heads; ++h) {
      std::size_t base = t * channels + h * n;  // this head's channels of token t
      float* s = state.data() + h * n * n;
      // Row i of S reads and writes only row i, so each row is finished before the next.
      for (std::size_t i = 0; i < n; ++i) {
        float* row = s + i * n;
        float sa = 0.0f;
        for (std::size_t j = 0; j < n; ++j) sa += row[j] * in.a[base + j];
        float out = 0.0f;
        for (std::size_t j = 0; j < n; ++j) {
          row[j] = row[j] * in.w[base + j] + sa * in.b[base + j] + in.v[base + i] * in.k[base + j];
          out += row[j] * in.r[base + j];
        }
        y[base + i] = out;
      }
    }
  }
}

}  // namespace rwkvc::cpu
