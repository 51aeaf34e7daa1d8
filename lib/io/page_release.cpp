#include "io/page_release.h"

#include <sys/mman.h>
#include <unistd.h>

namespace muspec {

namespace {
struct MappedRange {
  std::shared_ptr<const MappedFile> file;
  const uint8_t* data;
  uint64_t size;
  ~MappedRange() {
    if (!file->file_backed()) return;  // bytes made in memory: dropping their pages would lose them
    const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    const auto begin = (reinterpret_cast<uintptr_t>(data) + page - 1) / page * page;  // whole pages only
    const auto end = (reinterpret_cast<uintptr_t>(data) + size) / page * page;
    if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
  }
};
}  // namespace

std::shared_ptr<const void> keep_mapped_range(std::shared_ptr<const MappedFile> file, const uint8_t* data, uint64_t size) {
  return std::make_shared<const MappedRange>(MappedRange{std::move(file), data, size});
}

}  // namespace muspec
