// The RWKV-4 time-mix recurrence (docs/equations.md, RWKV-4). The numerator aa and denominator
// bb are kept scaled by e^-pp, so no exponential ever overflows.
#include <algorithm>
#include <cmath>

#include "backends/cpu/kernels.h"

namespace rwkvc::cpu {

void wkv4(std::span<const float> w, std::span<const float> u, std::span<const float> k, std::span<const float> v,
          Wkv4State state, std::span<float> y) {
  std::size_t channels = w.size();
  std::size_t steps = channels > 0 ? k.size() / channels : 0;
  for (std::size_t t = 0; t < steps; ++t) {
    for (std::size_t c = 0; c < channels; ++c) {
      std::size_t i = t * channels + c;
      float& aa = state.aa[c];
      float& bb = state.bb[c];
      float& pp = state.pp[c];

      // This token's output: the state plus this token weighted by the bonus u.
      float q = std::max(pp, u[c] + k[i]);
      float e_state = std::exp(pp - q);
      float e_token = std::exp(u[c] + k[i] - q);
      y[i] = (e_state * aa + e_token * v[i]) / (e_state * bb + e_token);

      // The state after this token: decayed by w, plus this token.
      float q_next = std::max(pp + w[c], k[i]);
      e_state = std::exp(pp + w[c] - q_next);
      e_token = std::exp(k[i] - q_next);
      aa = e_state * aa + e_token * v[i];
      bb = e_state * bb + e_token;
      pp = q_next;
    }
  }
}

}  // namespace rwkvc::cpu
