#include "kv/full_precision_store.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/check.h"

namespace qaq::internal {

FullPrecisionStore::FullPrecisionStore(ConstructorKey, FullPrecisionTier tier, const KvCacheShape& shape)
    : tier_(tier),
      shape_(shape),
      position_floats_(std::size_t(shape.n_layers) * 2 * std::size_t(shape.n_kv_heads) * std::size_t(shape.head_dim)) {}

StatusOr<std::unique_ptr<FullPrecisionStore>> FullPrecisionStore::Create(FullPrecisionTier tier, const std::string& dir,
                                                                         const KvCacheShape& shape) {
  QAQ_CHECK(tier != FullPrecisionTier::kNone);
  auto store = std::make_unique<FullPrecisionStore>(ConstructorKey(), tier, shape);
  if (tier == FullPrecisionTier::kRam) return store;

  std::string folder = dir;
  if (folder.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    folder = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  }
  std::string path = folder + "/qaq-kv-tier-XXXXXX";
  const int fd = mkstemp(path.data());
  if (fd < 0) {
    return InternalError("disk tier: cannot create a file in '{}': {}", folder, std::strerror(errno));
  }
  // Unlinked at once: the mapping keeps the data alive, and nothing is left behind.
  unlink(path.c_str());
  const std::size_t bytes = std::size_t(shape.max_tokens) * store->position_floats_ * sizeof(float);
  // A sparse file: blocks are allocated as positions are written.
  if (ftruncate(fd, off_t(bytes)) != 0) {
    const int err = errno;
    close(fd);
    return InternalError("disk tier: cannot size a file of {} bytes in '{}': {}", bytes, folder, std::strerror(err));
  }
  void* map = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int err = errno;
  close(fd);
  if (map == MAP_FAILED) {
    return InternalError("disk tier: cannot map {} bytes of a file in '{}': {}", bytes, folder, std::strerror(err));
  }
  store->mapped_ = static_cast<float*>(map);
  store->mapped_bytes_ = bytes;
  store->path_ = path;
  return store;
}

FullPrecisionStore::~FullPrecisionStore() {
  if (mapped_ != nullptr) munmap(mapped_, mapped_bytes_);
}

void FullPrecisionStore::Write(int layer, int pos, const float* k, const float* v) {
  QAQ_CHECK(pos >= 0 && pos < shape_.max_tokens && pos <= n_positions_, "tier: position {} after {}", pos,
            n_positions_);
  if (pos == n_positions_) {
    ++n_positions_;
    if (tier_ == FullPrecisionTier::kRam) ram_.resize(std::size_t(n_positions_) * position_floats_);
  }
  const std::size_t kv = std::size_t(shape_.n_kv_heads) * std::size_t(shape_.head_dim);
  float* base = (mapped_ != nullptr ? mapped_ : ram_.data()) + std::size_t(pos) * position_floats_ +
                std::size_t(layer) * 2 * kv;
  std::memcpy(base, k, kv * sizeof(float));
  std::memcpy(base + kv, v, kv * sizeof(float));
}

const float* FullPrecisionStore::At(int layer, int pos, int kv, int kv_head) const {
  QAQ_DCHECK(pos >= 0 && pos < n_positions_);
  const std::size_t kv_floats = std::size_t(shape_.n_kv_heads) * std::size_t(shape_.head_dim);
  const float* base = mapped_ != nullptr ? mapped_ : ram_.data();
  return base + std::size_t(pos) * position_floats_ + (std::size_t(layer) * 2 + std::size_t(kv)) * kv_floats +
         std::size_t(kv_head) * std::size_t(shape_.head_dim);
}

void FullPrecisionStore::Truncate(int n) {
  n_positions_ = std::min(n_positions_, std::max(n, 0));
  if (tier_ == FullPrecisionTier::kRam) ram_.resize(std::size_t(n_positions_) * position_floats_);
}

}  // namespace qaq::internal
