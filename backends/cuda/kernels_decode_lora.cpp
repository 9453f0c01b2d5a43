#include "backends/cuda/decode_lora_fold.h"

namespace rwkvc::cuda {

// The LoRA ups of a one-token wkv region, computed inside its kernel (a block per head): each
// up is a [C, D] matrix (held transposed, a row per channel) times the LoRA hidden vector, and
// a head needs only its own N rows, so the separate launch of all the ups goes away. The
// rows are short (D = 32..160), so four lanes share a row, each over every fourth 16-byte
// chunk, and a shuffle sums the quad. Needs kGemvSource (Pack, load_weights) ahead of it.
const char* const kDecodeLoraSource = R"CUDA(
// y[row] = W[row, :] . x for one row of a LoRA up, by the four lanes of a quad (`part` 0..3);
// every lane of the warp must call it (the quad's shuffle).
template <typename W>
__device__ __forceinline__ void lora_up_quad(int row, int part, const float* x, const W* __restrict__ w, float* y,
                                             int D) {
  constexpr int E = Pack<W>::E;
  const W* wr = w + (i64)row * D;
  float acc = 0.0f;
  const bool vec = D % E == 0 && reinterpret_cast<unsigned long long>(w) % 16 == 0 &&
                   reinterpret_cast<unsigned long long>(x) % 16 == 0;
  if (vec) {
    const uint4* w4 = reinterpret_cast<const uint4*>(wr);
    for (int c = part; c < D / E; c += 4) {
      float f[E];
      Pack<W>::unpack(load_weights(w4 + c), f);
      const float4* xv = reinterpret_cast<const float4*>(x + c * E);
#pragma unroll
      for (int q = 0; q < E / 4; ++q) {
        const float4 xx = xv[q];
        acc = fmaf(f[4 * q], xx.x, fmaf(f[4 * q + 1], xx.y, fmaf(f[4 * q + 2], xx.z, fmaf(f[4 * q + 3], xx.w, acc))));
      }
    }
  } else {
    for (int d = part; d < D; d += 4) acc = fmaf(to_f32(wr[d]), x[d], acc);
  }
  acc += __shfl_xor_sync(0xffffffffu, acc, 1);
  acc += __shfl_xor_sync(0xffffffffu, acc, 2);
  if (part == 0) y[row] = acc;
}
)CUDA";

}  // namespace rwkvc::cuda
