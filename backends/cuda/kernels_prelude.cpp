#include <cstdlib>
#include <stdexcept>
#include <string>

#include "backends/cuda/kernel_sources.h"

namespace rwkvc::cuda {

std::string device_type(DType dtype) {
  switch (dtype) {
    case DType::f32: return "float";
    case DType::f16: return "f16";
    case DType::bf16: return "bf16";
    case DType::i32: return "int";
  }
  throw std::logic_error("unknown dtype");
}

// Decode tuning switches for measurements (RWKVC_CUDA_EARLY_RELEASE=0 turns early release
// off; RWKVC_CUDA_GEMV_MIN_BLOCKS=n asks for n batched GEMV blocks an SM), as defines ahead
// of the prelude.
std::string tuning_defines() {
  auto off = [](const char* name) {
    const char* value = std::getenv(name);
    return value != nullptr && std::string(value) == "0";
  };
  std::string text;
  if (off("RWKVC_CUDA_EARLY_RELEASE")) text += "#define RWKVC_EARLY_RELEASE 0\n";
  if (const char* blocks = std::getenv("RWKVC_CUDA_GEMV_MIN_BLOCKS"); blocks != nullptr && std::atoi(blocks) > 0)
    text += "#define GEMV_LAUNCH_BOUNDS __launch_bounds__(256, " + std::to_string(std::atoi(blocks)) + ")\n";
  return text;
}

const char* const kPreludeSource = R"CUDA(
typedef long long i64;
typedef unsigned short u16;
typedef unsigned int u32;

// 16-bit floats as their bits: PTX converts, so no CUDA header is needed.
struct f16 { u16 bits; };
struct bf16 { u16 bits; };
__device__ __forceinline__ float half_bits_to_f32(u32 h) {
  float f;
  asm("{ .reg .b16 t; cvt.u16.u32 t, %1; cvt.f32.f16 %0, t; }" : "=f"(f) : "r"(h));
  return f;
}
__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(f16 x) { return half_bits_to_f32(x.bits); }
__device__ __forceinline__ float to_f32(bf16 x) { return __uint_as_float(((u32)x.bits) << 16); }
__device__ __forceinline__ u16 f32_to_f16_bits(float f) {
  u16 h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
}
__device__ __forceinline__ u16 f32_to_bf16_bits(float f) {
  u16 h;
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// The sum over the block of every thread's v (blockDim.x a multiple of 32, at most 1024);
// every thread gets it. `scratch` holds 32 floats.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read from a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : 0.0f;
  return warp_sum(v);
}

// Programmatic dependent launch (sm_90): a kernel may be launched while its predecessor still
// runs; it reads nothing the predecessor may write, and writes nothing it may read, before
// grid_wait() returns (every kernel calls it first, after at most loading weights, which no
// kernel writes). Releasing the dependents lets the next kernel launch, so that its launch and
// weight loads overlap this kernel. With RWKVC_EARLY_RELEASE a block releases them on entry,
// before its own wait: the chain of launched kernels then runs several deep, so the weights of
// the GEMVs after a latency-bound kernel (wkv, layer norm) stream while it runs. That stays
// correct because every wait waits for the whole predecessor, which itself waited for its own.
// All of these are no-ops on a plain launch.
#ifndef RWKVC_EARLY_RELEASE
#define RWKVC_EARLY_RELEASE 1
#endif
__device__ __forceinline__ void grid_wait() {
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void grid_release_dependents() {
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
// Kernels that load weights before their wait call kernel_release_early() first, then
// kernel_wait(); every other kernel calls kernel_entry() first.
__device__ __forceinline__ void kernel_release_early() {
#if RWKVC_EARLY_RELEASE
  grid_release_dependents();
#endif
}
__device__ __forceinline__ void kernel_wait() {
  grid_wait();
#if !RWKVC_EARLY_RELEASE
  grid_release_dependents();
#endif
}
__device__ __forceinline__ void kernel_entry() {
  kernel_release_early();
  kernel_wait();
}

__device__ __forceinline__ float sigmoidf_(float x) { return 1.0f / (1.0f + expf(-x)); }
__device__ __forceinline__ float softplusf_(float x) { return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x))); }
)CUDA";

}  // namespace rwkvc::cuda
