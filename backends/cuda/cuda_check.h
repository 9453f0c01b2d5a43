// Error checks for the CUDA runtime, NVRTC and cuBLAS: a failed call throws std::runtime_error
// naming the call and the library's own message.
#pragma once

#include <string_view>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <nvrtc.h>

namespace rwkvc::cuda {

void check(cudaError_t status, std::string_view what);
void check(nvrtcResult status, std::string_view what);
void check(cublasStatus_t status, std::string_view what);

}  // namespace rwkvc::cuda
