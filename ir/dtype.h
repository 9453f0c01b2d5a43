// Element types of IR values and weights.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace rwkvc {

// Quantized types will join this list; every switch over DType names each case so the
// compiler points at the places to extend.
enum class DType { f32, f16, bf16, i32 };

std::string_view dtype_name(DType dtype);
std::optional<DType> parse_dtype(std::string_view name);
std::size_t dtype_size(DType dtype);
bool is_float(DType dtype);

}  // namespace rwkvc
