// NumPy .npy files (format version 1.0, little-endian), so results can be read by NumPy.
#pragma once

#include <string>
#include <vector>

#include "ir/tensor.h"

namespace rwkvc {

// Writes an f32 tensor as '<f4' atomically (a temporary file renamed into place).
void write_npy(const std::string& path, const HostTensor& tensor);

// Reads a C-order '<f4' or '<f8' array; values widened to double.
struct NpyArray {
  std::vector<std::int64_t> shape;
  std::vector<double> values;
};
NpyArray read_npy(const std::string& path);

}  // namespace rwkvc
