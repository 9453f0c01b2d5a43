#include "frontend/atomic_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <unistd.h>

#include <fmt/format.h>

namespace rwkvc {

void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write) {
  std::string temporary = fmt::format("{}.tmp-{}", path, ::getpid());
  try {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error(fmt::format("cannot create '{}': {}", path, std::strerror(errno)));
    write(out);
    out.flush();
    if (!out) throw std::runtime_error(fmt::format("cannot write '{}': {}", path, std::strerror(errno)));
    out.close();
    if (std::rename(temporary.c_str(), path.c_str()) != 0)
      throw std::runtime_error(fmt::format("cannot write '{}': {}", path, std::strerror(errno)));
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw;
  }
}

}  // namespace rwkvc
