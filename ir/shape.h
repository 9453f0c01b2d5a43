// Shapes whose leading dimension may be the sequence length T, bound only at run time.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "ir/dtype.h"

namespace rwkvc {

// A dimension is a non-negative extent, or kSeq: the number of tokens of one forward call.
// A graph is compiled once and then runs for any T >= 1.
using Dim = std::int64_t;
inline constexpr Dim kSeq = -1;

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<Dim> dims) : dims_(dims) {}
  explicit Shape(std::vector<Dim> dims) : dims_(std::move(dims)) {}

  std::size_t rank() const { return dims_.size(); }
  Dim operator[](std::size_t i) const { return dims_[i]; }
  Dim& operator[](std::size_t i) { return dims_[i]; }
  Dim back() const { return dims_.back(); }
  const std::vector<Dim>& dims() const { return dims_; }
  bool has_seq() const;
  // Element count with T = seq_len.
  std::int64_t numel(std::int64_t seq_len = 1) const;
  // The shape with every kSeq replaced by seq_len.
  Shape bind(std::int64_t seq_len) const;

  bool operator==(const Shape&) const = default;

 private:
  std::vector<Dim> dims_;
};

// "[T, 64]"
std::string to_string(const Shape& shape);

// A value's type: element type and shape.
struct TensorType {
  DType dtype = DType::f32;
  Shape shape;
  bool operator==(const TensorType&) const = default;
};

// "f32[T, 64]"
std::string to_string(const TensorType& type);

}  // namespace rwkvc
