#include "ir/tensor.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

namespace rwkvc {

HostTensor::HostTensor(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) {
  if (shape_.has_seq()) throw std::invalid_argument("a host tensor needs a concrete shape, got " + to_string(shape_));
  auto storage = std::make_shared<std::vector<std::byte>>(nbytes());
  data_ = storage->data();
  owner_ = std::move(storage);
  owned_ = true;
}

HostTensor HostTensor::from_f32(Shape shape, std::vector<float> values) {
  HostTensor t(DType::f32, std::move(shape));
  if (values.size() != static_cast<std::size_t>(t.numel()))
    throw std::invalid_argument(fmt::format("{} values for shape {}", values.size(), to_string(t.shape())));
  std::memcpy(t.mutable_data(), values.data(), t.nbytes());
  return t;
}

HostTensor HostTensor::from_i32(Shape shape, const std::vector<std::int32_t>& values) {
  HostTensor t(DType::i32, std::move(shape));
  if (values.size() != static_cast<std::size_t>(t.numel()))
    throw std::invalid_argument(fmt::format("{} values for shape {}", values.size(), to_string(t.shape())));
  std::memcpy(t.mutable_data(), values.data(), t.nbytes());
  return t;
}

HostTensor HostTensor::view(DType dtype, Shape shape, const void* data, std::shared_ptr<const void> owner) {
  HostTensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.data_ = static_cast<const std::byte*>(data);
  t.owner_ = std::move(owner);
  return t;
}

std::byte* HostTensor::mutable_data() {
  if (!owned_) throw std::logic_error("a tensor viewing borrowed memory is read-only");
  return const_cast<std::byte*>(data_);
}

std::span<const float> HostTensor::f32() const {
  if (dtype_ != DType::f32) throw std::logic_error(fmt::format("tensor is {}, not f32", dtype_name(dtype_)));
  return {reinterpret_cast<const float*>(data_), static_cast<std::size_t>(numel())};
}

std::span<float> HostTensor::mutable_f32() {
  if (dtype_ != DType::f32) throw std::logic_error(fmt::format("tensor is {}, not f32", dtype_name(dtype_)));
  return {reinterpret_cast<float*>(mutable_data()), static_cast<std::size_t>(numel())};
}

std::span<const std::int32_t> HostTensor::i32() const {
  if (dtype_ != DType::i32) throw std::logic_error(fmt::format("tensor is {}, not i32", dtype_name(dtype_)));
  return {reinterpret_cast<const std::int32_t*>(data_), static_cast<std::size_t>(numel())};
}

std::vector<float> HostTensor::to_f32() const {
  std::size_t n = static_cast<std::size_t>(numel());
  std::vector<float> out(n);
  auto halves = [&](float (*convert)(std::uint16_t)) {
    for (std::size_t i = 0; i < n; ++i) {
      std::uint16_t bits;
      std::memcpy(&bits, data_ + 2 * i, 2);
      out[i] = convert(bits);
    }
  };
  switch (dtype_) {
    case DType::f32: std::memcpy(out.data(), data_, 4 * n); break;
    case DType::f16: halves(half_to_float); break;
    case DType::bf16: halves(bf16_to_float); break;
    case DType::i32:
      for (std::size_t i = 0; i < n; ++i) {
        std::int32_t v;
        std::memcpy(&v, data_ + 4 * i, 4);
        out[i] = static_cast<float>(v);
      }
      break;
  }
  return out;
}

HostTensor HostTensor::converted(DType dtype) const {
  if (!is_float(dtype_) || !is_float(dtype))
    throw std::logic_error(fmt::format("cannot convert a {} tensor to {}", dtype_name(dtype_), dtype_name(dtype)));
  if (dtype == dtype_) return *this;
  std::vector<float> values = to_f32();
  if (dtype == DType::f32) return from_f32(shape_, std::move(values));
  HostTensor out(dtype, shape_);
  std::uint16_t (*round)(float) = dtype == DType::f16 ? float_to_half : float_to_bf16;
  std::byte* bytes = out.mutable_data();
  for (std::size_t i = 0; i < values.size(); ++i) {
    std::uint16_t bits = round(values[i]);
    std::memcpy(bytes + 2 * i, &bits, 2);
  }
  return out;
}

HostTensor HostTensor::reshaped(Shape shape) const {
  if (shape.numel() != numel())
    throw std::logic_error(fmt::format("cannot view {} elements as {}", numel(), to_string(shape)));
  HostTensor out = *this;
  out.shape_ = std::move(shape);
  return out;
}

float half_to_float(std::uint16_t h) {
  std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  std::uint32_t exponent = (h >> 10) & 0x1fu;
  std::uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24
    float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  std::uint32_t bits = exponent == 31 ? sign | 0x7f800000u | (mantissa << 13)
                                      : sign | ((exponent + 112) << 23) | (mantissa << 13);
  return std::bit_cast<float>(bits);
}

std::uint16_t float_to_half(float f) {
  std::uint32_t bits = std::bit_cast<std::uint32_t>(f);
  std::uint16_t sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
  float magnitude = std::fabs(f);
  if (std::isnan(f)) return sign | 0x7e00u;
  if (magnitude >= 65520.0f) return sign | 0x7c00u;  // rounds to infinity
  if (magnitude < 6.103515625e-05f) {                // subnormal half: multiples of 2^-24
    auto units = static_cast<std::uint16_t>(std::nearbyint(magnitude * 16777216.0f));
    return sign | units;
  }
  std::uint32_t abs_bits = bits & 0x7fffffffu;
  // Re-bias the exponent and round the 13 dropped mantissa bits to nearest even.
  std::uint32_t rounded = abs_bits + 0xfffu + ((abs_bits >> 13) & 1u);
  return sign | static_cast<std::uint16_t>((rounded - (112u << 23)) >> 13);
}

float bf16_to_float(std::uint16_t b) { return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16); }

std::uint16_t float_to_bf16(float f) {
  std::uint32_t bits = std::bit_cast<std::uint32_t>(f);
  if (std::isnan(f)) return static_cast<std::uint16_t>((bits >> 16) | 0x40u);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<std::uint16_t>(bits >> 16);
}

}  // namespace rwkvc
