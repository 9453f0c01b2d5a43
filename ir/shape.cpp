#include "ir/shape.h"

#include <algorithm>

namespace rwkvc {

bool Shape::has_seq() const { return std::find(dims_.begin(), dims_.end(), kSeq) != dims_.end(); }

std::int64_t Shape::numel(std::int64_t seq_len) const {
  std::int64_t n = 1;
  for (Dim d : dims_) n *= d == kSeq ? seq_len : d;
  return n;
}

Shape Shape::bind(std::int64_t seq_len) const {
  std::vector<Dim> out = dims_;
  for (Dim& d : out)
    if (d == kSeq) d = seq_len;
  return Shape(std::move(out));
}

std::string to_string(const Shape& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.rank(); ++i) {
    if (i) s += ", ";
    s += shape[i] == kSeq ? std::string("T") : std::to_string(shape[i]);
  }
  return s + "]";
}

std::string to_string(const TensorType& type) {
  return std::string(dtype_name(type.dtype)) + to_string(type.shape);
}

}  // namespace rwkvc
