// MappedFile: a whole read-only file mapped into memory (RAII over mmap/munmap).
// Weights are read in place from the page cache, so opening a multi-gigabyte
// checkpoint costs nothing until its pages are touched.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace darkroom {

class MappedFile {
 public:
  // Maps `path` read-only. Errors name `who` and the path: "[<who>] <path>: cannot
  // open: No such file or directory". An empty file maps to an empty span.
  static MappedFile open(const std::string& path, std::string_view who = "mapped_file");

  MappedFile() = default;
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // The pages are mapped PROT_READ: writing through data() faults.
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

 private:
  void unmap();

  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

}  // namespace darkroom
