// Writing a file so that readers see either nothing or the whole of it: the bytes go to a
// temporary file in the same directory, renamed over the target once complete.
#pragma once

#include <functional>
#include <ostream>
#include <string>

namespace rwkvc {

// Calls `write` with a stream on the temporary file; throws std::runtime_error naming `path`
// (and removes the temporary) if opening, writing or renaming fails or `write` throws.
void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write);

}  // namespace rwkvc
