// A read-only memory mapping of a whole file, released when the object dies.
//
// Model weights stay in the mapping: TensorViews point into it, so the Model that owns the
// MappedFile must outlive every view. Pages are loaded by the kernel on first touch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>

#include "qaq/status.h"

namespace qaq {

class MappedFile {
  struct PrivateTag {};  // keeps the constructor private to Open() yet usable by make_unique

 public:
  // Maps `path` read-only. Errors: kNotFound (missing file, or not a regular file), kDataLoss
  // (empty file: nothing can be mapped), kInternal (open/stat/mmap failed for another reason).
  static StatusOr<std::unique_ptr<MappedFile>> Open(const std::string& path);

  // Use Open().
  MappedFile(PrivateTag, std::string path, const std::uint8_t* data, std::size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  std::span<const std::uint8_t> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace qaq
