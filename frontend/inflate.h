// Raw deflate streams (RFC 1951), the compression zip archives use, inflated by zlib.
// torch.save never compresses; this serves archives that another tool re-packed.
#pragma once

#include <cstddef>
#include <span>

namespace rwkvc {

// Inflates `compressed` into exactly `output.size()` bytes. Throws std::invalid_argument (saying
// what is wrong, not where: the caller names the file and entry) when the stream is malformed,
// ends early, or inflates to any other length.
void inflate_raw(std::span<const std::byte> compressed, std::span<std::byte> output);

}  // namespace rwkvc
