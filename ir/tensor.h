// Tensors in host memory: weights, logits, exported states. A tensor owns its bytes or views
// memory kept alive by an owner (a memory-mapped checkpoint), so loading never copies twice.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ir/shape.h"

namespace rwkvc {

class HostTensor {
 public:
  HostTensor() = default;
  // Zero-filled, owned.
  HostTensor(DType dtype, Shape shape);
  static HostTensor from_f32(Shape shape, std::vector<float> values);
  static HostTensor from_i32(Shape shape, const std::vector<std::int32_t>& values);
  // Views `data` (dtype elements, row-major); `owner` keeps it alive.
  static HostTensor view(DType dtype, Shape shape, const void* data, std::shared_ptr<const void> owner);

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  std::int64_t numel() const { return shape_.numel(); }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }
  const std::byte* data() const { return data_; }
  // Only owned tensors are writable; a view throws.
  std::byte* mutable_data();

  std::span<const float> f32() const;  // requires dtype f32
  std::span<float> mutable_f32();
  std::span<const std::int32_t> i32() const;
  // Every element as float, converting f16/bf16.
  std::vector<float> to_f32() const;
  // The same values as a float `dtype`, rounded to nearest even; shares the bytes when the dtype
  // already matches. Float tensors only.
  HostTensor converted(DType dtype) const;
  // The same bytes under another shape with as many elements.
  HostTensor reshaped(Shape shape) const;

 private:
  DType dtype_ = DType::f32;
  Shape shape_;
  const std::byte* data_ = nullptr;
  std::shared_ptr<const void> owner_;  // a std::vector<std::byte> when owned
  bool owned_ = false;
};

// Weights by checkpoint tensor name.
using WeightMap = std::map<std::string, HostTensor, std::less<>>;

// IEEE binary16 and bfloat16 conversions (round to nearest even).
float half_to_float(std::uint16_t h);
std::uint16_t float_to_half(float f);
float bf16_to_float(std::uint16_t b);
std::uint16_t float_to_bf16(float f);

}  // namespace rwkvc
