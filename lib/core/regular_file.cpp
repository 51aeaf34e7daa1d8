#include "core/regular_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "core/error.h"

namespace muspec {

namespace {

[[noreturn]] void fail(const std::string& path, const char* what, int err) {
  throw InputError(path, "", std::string("cannot ") + what + ": " + std::strerror(err));
}

void refuse_unless_regular(const std::string& path, mode_t mode) {
  const std::string why = non_regular_reason(mode);
  if (!why.empty()) throw InputError(path, "", why);
}

/// Closes a descriptor unless released (the success path hands it to the caller).
struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
  int release() { return std::exchange(fd, -1); }
};

}  // namespace

std::string non_regular_reason(mode_t mode) {
  if (S_ISREG(mode)) return "";
  if (S_ISDIR(mode)) return "is a directory, not a regular file";
  if (S_ISFIFO(mode)) return "is a FIFO, not a regular file";
  if (S_ISSOCK(mode)) return "is a socket, not a regular file";
  if (S_ISCHR(mode)) return "is a character device, not a regular file";
  if (S_ISBLK(mode)) return "is a block device, not a regular file";
  return "is not a regular file";
}

void refuse_special_file(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) refuse_unless_regular(path, st.st_mode);
}

int open_regular_file(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) fail(path, "open", errno);
  refuse_unless_regular(path, st.st_mode);
  // O_NONBLOCK: if the path became a FIFO since stat(), open() must not wait for a writer;
  // O_NOCTTY: a terminal swapped in must not become our controlling terminal.
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) fail(path, "open", errno);
  FdGuard guard{fd};
  if (::fstat(fd, &st) != 0) fail(path, "stat", errno);
  refuse_unless_regular(path, st.st_mode);
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) fail(path, "set blocking mode", errno);
  return guard.release();
}

std::string read_regular_file(const std::string& path, uint64_t max_bytes) {
  FdGuard fd{open_regular_file(path)};
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd.fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(path, "read", errno);
    if (n == 0) return out;
    if (out.size() + static_cast<uint64_t>(n) > max_bytes)
      throw InputError(path, "", "file is larger than " + std::to_string(max_bytes) + " bytes");
    out.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace muspec
