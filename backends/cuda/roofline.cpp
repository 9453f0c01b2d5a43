#include "backends/cuda/roofline.h"

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include <cublas_v2.h>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/cuda_device.h"
#include "ir/tensor.h"

namespace rwkvc::cuda {

namespace {

template <typename Run>
double median_seconds(Run run, int repeats = 20) {
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  run();  // warm-up
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) {
    check(cudaEventRecord(start), "cudaEventRecord");
    run();
    check(cudaEventRecord(stop), "cudaEventRecord");
    check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    times.push_back(ms / 1000.0);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::nth_element(times.begin(), times.begin() + repeats / 2, times.end());
  return times[static_cast<std::size_t>(repeats / 2)];
}

}  // namespace

double copy_bandwidth(int device, std::size_t bytes) {
  DeviceMemory from(device, bytes), to(device, bytes);
  check(cudaMemset(from.get(), 0x5a, bytes), "cudaMemset");
  double seconds = median_seconds([&] { check(cudaMemcpy(to.get(), from.get(), bytes, cudaMemcpyDeviceToDevice), "copy"); });
  return 2.0 * static_cast<double>(bytes) / seconds;
}

double gemm_rate(int device, int n, DType dtype) {
  auto count = static_cast<std::size_t>(n) * static_cast<std::size_t>(n);
  std::vector<std::uint16_t> host(count);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (auto& h : host) h = dtype == DType::bf16 ? float_to_bf16(uniform(rng)) : float_to_half(uniform(rng));
  DeviceMemory a(device, count * 2), b(device, count * 2), c(device, count * 4);
  check(cudaMemcpy(a.get(), host.data(), count * 2, cudaMemcpyHostToDevice), "upload");
  check(cudaMemcpy(b.get(), host.data(), count * 2, cudaMemcpyHostToDevice), "upload");
  cublasHandle_t handle = nullptr;
  check(cublasCreate(&handle), "cublasCreate");
  cudaDataType type = dtype == DType::bf16 ? CUDA_R_16BF : CUDA_R_16F;
  const float one = 1.0f, zero = 0.0f;
  double seconds = median_seconds([&] {
    check(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &one, a.get(), type, n, b.get(), type, n, &zero,
                       c.get(), CUDA_R_32F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
          "cublasGemmEx");
  });
  cublasDestroy(handle);
  return 2.0 * n * static_cast<double>(n) * n / seconds;
}

}  // namespace rwkvc::cuda
