// A whole file mapped read-only, shared by the checkpoint readers: tensors view its bytes and
// hold the shared_ptr, so the file is unmapped when the last of them dies.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>

namespace rwkvc {

class MappedFile {
 public:
  // Throws std::invalid_argument naming `path` if it cannot be opened, is not a regular file
  // or cannot be mapped.
  static std::shared_ptr<const MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* data() const { return data_; }
  std::size_t size() const { return size_; }
  std::span<const std::byte> bytes() const { return {data_, size_}; }

 private:
  MappedFile(const std::byte* data, std::size_t size) : data_(data), size_(size) {}
  const std::byte* data_;
  std::size_t size_;
};

}  // namespace rwkvc
