#include "store/isolated_read.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"

namespace muspec {

namespace {

constexpr int kProbeDone = 0;  ///< the child's only "finished" status; any other is a crash

constexpr size_t kHeaderBytes = 9;

/// false when the parent is gone or gave up (nothing more to tell).
bool write_all(int fd, const char* p, size_t n) {
  size_t done = 0;
  while (done < n) {
    const ssize_t k = ::write(fd, p + done, n - done);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    done += static_cast<size_t>(k);
  }
  return true;
}

std::string frame_head(char tag, uint64_t length) {
  std::string h(kHeaderBytes, '\0');
  h[0] = tag;
  for (size_t i = 0; i < 8; ++i) h[1 + i] = static_cast<char>(length >> (8 * i));
  return h;
}

void send_frame(int fd, char tag, const std::string& payload) {
  const std::string h = frame_head(tag, payload.size());
  if (!write_all(fd, h.data(), h.size()) || !write_all(fd, payload.data(), payload.size())) ::_exit(kProbeDone);
}

void send_error(int fd, const std::string& tensor, const std::string& reason) {
  std::string report = tensor + '\0' + reason;
  if (report.size() > kMaxErrorFrame) report.resize(kMaxErrorFrame);
  send_frame(fd, kErrorFrame, report);
}

[[noreturn]] void run_child(const std::function<void(ChildChannel&)>& read, int report_fd) {
  // A crash here must end this process by its signal, for the parent to report: handlers the
  // parent installed (the scan's SIGBUS guard, a sanitizer's or fuzzer's reporter) would run
  // in a copy of the parent that has no business reporting or recovering.
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS}) ::signal(sig, SIG_DFL);
  const int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (devnull >= 0) {
    ::dup2(devnull, STDOUT_FILENO);
    ::dup2(devnull, STDERR_FILENO);
  }
  // report_fd stays open until exit: its closing tells the parent the child is gone.
  try {
    ChildChannel channel(report_fd);
    read(channel);
    send_frame(report_fd, kFinishedFrame, "");
  } catch (const InputError& e) {
    // The parent throws this error without reading the file: libhdf5's failure paths (which
    // leak, and which crafted files reach) run only here.
    send_error(report_fd, e.tensor(), e.reason());
  } catch (const std::exception& e) {  // out of memory, say: the parent must not read the file itself either
    send_error(report_fd, "", std::string("reading it failed: ") + e.what());
  } catch (...) {
    send_error(report_fd, "", "reading it failed");
  }
  ::_exit(kProbeDone);  // no atexit handlers, no flushing of the parent's buffers
}

/// The parent's side: reads frames until the pipe closes, the deadline passes or the frames
/// stop making sense, and reaps the child. A child still running when this ends is killed.
class ChildWatch {
 public:
  ChildWatch(pid_t pid, int fd, double timeout_s)
      : pid_(pid),
        fd_(fd),
        deadline_(std::chrono::steady_clock::now() +
                  std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(timeout_s))) {}
  ~ChildWatch() {
    if (!reaped_) {
      ::kill(pid_, SIGKILL);
      while (::waitpid(pid_, &status_, 0) < 0 && errno == EINTR) {
      }
    }
    ::close(fd_);
  }
  ChildWatch(const ChildWatch&) = delete;
  ChildWatch& operator=(const ChildWatch&) = delete;

  static constexpr int kTimedOut = -1, kMalformed = -2;

  /// Hands each 'M' payload to `receive` until the pipe closes. Returns the wait status, or
  /// kTimedOut, or kMalformed when the child sent bytes that are not frames (it is killed).
  int run(const std::function<void(std::string&&)>& receive) {
    std::vector<char> chunk(1 << 16);
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - std::chrono::steady_clock::now());
      if (left.count() <= 0) return killed(kTimedOut);
      pollfd p{fd_, POLLIN, 0};
      const int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
      if (r < 0 && errno != EINTR) break;
      if (r <= 0) continue;
      const ssize_t n = ::read(fd_, chunk.data(), chunk.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // closed: the child is gone
      frames_.feed(chunk.data(), static_cast<size_t>(n), receive);
      if (!frames_.malformed().empty()) return killed(kMalformed);
    }
    return reap();
  }

  const ChildFrameParser& frames() const { return frames_; }

 private:
  int reap() {
    frames_.end();  // a frame cut short is told only when the child exited normally
    for (;;) {
      const pid_t r = ::waitpid(pid_, &status_, WNOHANG);
      if (r == pid_) return reaped_ = true, status_;
      if (r < 0 && errno != EINTR) return reaped_ = true, 0;  // reaped elsewhere: nothing more to learn
      if (std::chrono::steady_clock::now() >= deadline_) return killed(kTimedOut);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // closed its pipe, not yet reaped
    }
  }

  int killed(int why) {
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, &status_, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
    return why;
  }

  pid_t pid_;
  int fd_;
  std::chrono::steady_clock::time_point deadline_;
  int status_ = 0;
  bool reaped_ = false;
  ChildFrameParser frames_;
};

}  // namespace

InputError child_sent_damaged(const std::string& path, const std::string& what) {
  return InputError(path, "", "libhdf5 failed reading it (the reading process sent " + what + "): a corrupt or crafted HDF5 file");
}

double isolated_read_timeout_s(int64_t file_bytes) {
  if (const char* env = std::getenv("MUSPEC_H5_READ_TIMEOUT"); env != nullptr && std::atof(env) > 0) return std::atof(env);
  return 60.0 + static_cast<double>(std::max<int64_t>(file_bytes, 0)) / 1e7;
}

std::string child_frame(char tag, const std::string& payload) { return frame_head(tag, payload.size()) + payload; }

void ChildFrameParser::feed(const char* bytes, size_t n, const std::function<void(std::string&&)>& receive) {
  if (!malformed_.empty()) return;
  pending_.append(bytes, n);
  size_t at = 0;
  while (pending_.size() - at >= kHeaderBytes) {
    const char tag = pending_[at];
    uint64_t length = 0;
    for (int i = 7; i >= 0; --i) length = length << 8 | static_cast<unsigned char>(pending_[at + 1 + static_cast<size_t>(i)]);
    if (finished_ || has_error_) malformed_ = "bytes after its last report";
    else if (tag != kMessageFrame && tag != kErrorFrame && tag != kFinishedFrame) malformed_ = "an unknown report";
    else if (length > (tag == kMessageFrame ? kMaxChildMessage : tag == kErrorFrame ? kMaxErrorFrame : 0))
      malformed_ = "a report of " + std::to_string(length) + " bytes";
    if (!malformed_.empty()) {
      pending_.clear();
      return;
    }
    if (pending_.size() - at - kHeaderBytes < length) break;  // the rest is still coming
    std::string payload = pending_.substr(at + kHeaderBytes, static_cast<size_t>(length));
    at += kHeaderBytes + static_cast<size_t>(length);
    if (tag == kMessageFrame) receive(std::move(payload));
    else if (tag == kErrorFrame) has_error_ = true, error_ = std::move(payload);
    else finished_ = true;
  }
  pending_.erase(0, at);
}

void ChildFrameParser::end() {
  if (!pending_.empty() && malformed_.empty()) malformed_ = "a report cut short";
}

void ChildChannel::send(const std::string& message) {
  if (message.size() > kMaxChildMessage) throw Error("a message of " + std::to_string(message.size()) + " bytes is too long for the pipe");
  send_frame(fd_, kMessageFrame, message);
}

bool read_in_child(const std::string& path, const std::function<void(ChildChannel&)>& read,
                   const std::function<void(std::string&&)>& receive, double timeout_s) {
  if (const char* env = std::getenv("MUSPEC_H5_ISOLATION"); env != nullptr && std::strcmp(env, "off") == 0) return false;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return false;  // cannot isolate (descriptor limit): read in-process as before
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {  // cannot isolate (process limit): read in-process as before
    ::close(fds[0]);
    ::close(fds[1]);
    return false;
  }
  if (pid == 0) {
    ::close(fds[0]);
    run_child(read, fds[1]);
  }
  ::close(fds[1]);
  ChildWatch watch(pid, fds[0], timeout_s);
  const int status = watch.run(receive);
  if (status == ChildWatch::kTimedOut)
    throw InputError(path, "", "reading it with libhdf5 did not finish within " + std::to_string(static_cast<int>(timeout_s)) +
                                   " s (a corrupt or crafted HDF5 file)");
  if (status != ChildWatch::kMalformed && WIFSIGNALED(status))
    throw InputError(path, "", std::string("libhdf5 crashed reading it (") + strsignal(WTERMSIG(status)) +
                                   "): a corrupt or crafted HDF5 file");
  if (status != ChildWatch::kMalformed && (!WIFEXITED(status) || WEXITSTATUS(status) != kProbeDone))
    throw InputError(path, "", "libhdf5 failed reading it (the reading process exited with status " +
                                   std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + "): a corrupt or crafted HDF5 file");
  if (!watch.frames().malformed().empty())
    throw child_sent_damaged(path, watch.frames().malformed());
  if (const std::string* e = watch.frames().error()) {
    const size_t sep = e->find('\0');
    if (sep != std::string::npos) throw InputError(path, e->substr(0, sep), e->substr(sep + 1));
    throw InputError(path, "", *e);  // cut at the cap before the separator
  }
  if (!watch.frames().finished())
    throw InputError(path, "", "libhdf5 failed reading it (the reading process ended without a report): a corrupt or crafted HDF5 file");
  return true;
}

}  // namespace muspec
