#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "core/regular_file.h"
#include "io/bus_guard.h"

namespace muspec {

namespace {

const uint8_t kEmpty[1] = {0};

/// Closes a file descriptor on scope exit (the mapping stays valid after close()).
struct FdCloser {
  int fd;
  ~FdCloser() { ::close(fd); }
};

[[noreturn]] void fail(const std::string& path, const char* what, int err) {
  throw InputError(path, "", std::string("cannot ") + what + ": " + std::strerror(err));
}

}  // namespace

MappedFile::MappedFile(std::string path) : path_(std::move(path)) {
  // Checked by type before open(): a FIFO would block here forever, a device has side effects.
  const int fd = open_regular_file(path_);
  FdCloser closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0) fail(path_, "stat", errno);
  if (st.st_size < 0) throw InputError(path_, "", "negative file size");
  size_ = static_cast<uint64_t>(st.st_size);
  if (size_ == 0) {
    data_ = kEmpty;
    return;
  }
  if (size_ > static_cast<uint64_t>(SIZE_MAX)) throw InputError(path_, "", "file too large to map");
  void* p = ::mmap(nullptr, static_cast<size_t>(size_), PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) fail(path_, "mmap", errno);
  mapping_ = p;
  data_ = static_cast<const uint8_t*>(p);
  // A file truncated while mapped raises SIGBUS on the next read past its new end; the guard
  // turns that into zero bytes and a fault count that readers of this mapping check.
  guard_slot_ = register_guarded_mapping(p, size_);
}

MappedFile::~MappedFile() {
  unregister_guarded_mapping(guard_slot_);
  if (mapping_ != nullptr) ::munmap(mapping_, static_cast<size_t>(size_));
}

uint64_t MappedFile::faults() const {
  return parent_ != nullptr ? parent_->faults() : guarded_mapping_faults(guard_slot_);  // a view: its file's
}

std::shared_ptr<const MappedFile> MappedFile::open(const std::string& path) {
  return std::make_shared<const MappedFile>(path);
}

std::shared_ptr<const MappedFile> MappedFile::view(std::shared_ptr<const MappedFile> parent, uint64_t offset,
                                                   uint64_t length, std::string label) {
  if (offset > parent->size() || length > parent->size() - offset) throw UsageError("MappedFile::view: range outside " + parent->path());
  std::shared_ptr<MappedFile> v(new MappedFile());
  v->path_ = std::move(label);
  v->data_ = parent->data() + offset;
  v->size_ = length;
  v->parent_ = std::move(parent);
  return v;
}

std::shared_ptr<const MappedFile> MappedFile::from_bytes(std::vector<uint8_t> bytes, std::string label) {
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = std::move(label);
  f->owned_ = std::move(bytes);
  f->in_memory_ = true;
  f->data_ = f->owned_.empty() ? kEmpty : f->owned_.data();
  f->size_ = f->owned_.size();
  return f;
}

std::string relative_path_problem(const std::string& name) {
  if (name.empty()) return "is empty";
  if (name.find('\0') != std::string::npos) return "contains a NUL byte";
  const bool drive = name.size() > 1 && name[1] == ':' && std::isalpha(static_cast<unsigned char>(name[0]));
  if (name[0] == '/' || name[0] == '\\' || drive) return "is an absolute path";
  size_t start = 0;
  while (start <= name.size()) {
    size_t stop = name.find_first_of("/\\", start);
    if (stop == std::string::npos) stop = name.size();
    if (stop - start == 2 && name.compare(start, 2, "..") == 0) return "has a '..' component";
    start = stop + 1;
  }
  return "";
}

}  // namespace muspec
