// The two ceilings benchmarks are measured against, read off the device itself: memory
// bandwidth (a device-to-device copy) and the tensor cores' rate (a cuBLAS GEMM).
#pragma once

#include <cstddef>

#include "ir/dtype.h"

namespace rwkvc::cuda {

// Bytes per second moved by a device-to-device copy of `bytes`, counting bytes read and
// written; the median of 20 copies after a warm-up.
double copy_bandwidth(int device, std::size_t bytes = std::size_t{1} << 30);

// FLOP/s of an n x n x n cuBLAS product of random `dtype` (f16 or bf16) matrices with f32
// accumulation; the median of 20 after a warm-up.
double gemm_rate(int device, int n = 8192, DType dtype = DType::f16);

}  // namespace rwkvc::cuda
