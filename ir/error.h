// The error type of the IR layer: messages name the op or value at fault.
#pragma once

#include <stdexcept>

namespace rwkvc {

class IrError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace rwkvc
