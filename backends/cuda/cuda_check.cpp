#include "backends/cuda/cuda_check.h"

#include <stdexcept>

#include <fmt/format.h>

namespace rwkvc::cuda {

void check(cudaError_t status, std::string_view what) {
  if (status == cudaSuccess) return;
  cudaGetLastError();  // clears a non-sticky error so the next call does not report it again
  throw std::runtime_error(fmt::format("CUDA: {} failed: {} ({})", what, cudaGetErrorString(status),
                                       cudaGetErrorName(status)));
}

void check(nvrtcResult status, std::string_view what) {
  if (status != NVRTC_SUCCESS)
    throw std::runtime_error(fmt::format("NVRTC: {} failed: {}", what, nvrtcGetErrorString(status)));
}

void check(cublasStatus_t status, std::string_view what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(fmt::format("cuBLAS: {} failed: {} ({})", what, cublasGetStatusString(status),
                                         cublasGetStatusName(status)));
}

}  // namespace rwkvc::cuda
