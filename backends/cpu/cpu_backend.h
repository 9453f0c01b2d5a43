// The CPU reference backend: interprets the unfused IR in f32, simply and obviously right.
// It is the oracle every pass and every other backend is checked against.
#pragma once

#include <memory>

#include "backends/backend.h"

namespace rwkvc {

std::unique_ptr<Backend> make_cpu_backend();

}  // namespace rwkvc
