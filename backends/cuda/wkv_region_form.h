// The form of an RWKV-7 wkv region that the head-wise kernels take (the one-token kernel, a
// block per head, and the long-call pre/post kernels, a block per (token, head)): one wkv7
// among ops the code generator writes, its state a region argument, its vectors [T, H * N]
// with N a multiple of 32 up to 128, and every op keeping the heads apart, so one block can
// evaluate a head's channels without reading another head's.
#pragma once

#include <optional>

#include "ir/graph.h"

namespace rwkvc::cuda {

struct HeadwiseWkv7 {
  const Op* wkv = nullptr;  // the recurrence, inside the region's body
  Dim heads = 0, size = 0;  // H and N
};

// The region's recurrence and head shape, or null when `region_op` is not of that form.
std::optional<HeadwiseWkv7> match_headwise_wkv7(const Op& region_op);

}  // namespace rwkvc::cuda
