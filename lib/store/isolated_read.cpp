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

#include "core/error.h"

namespace muspec {

namespace {

constexpr int kProbeDone = 0;  ///< the child's only "finished" status; any other is a crash

/// What the child sends back, capped in size: 'N' and the probe's note when it returned, 'E' and
/// the InputError's tensor and reason (NUL-separated) when it threw one, nothing otherwise.
constexpr size_t kMaxReport = 1 << 16;
constexpr char kNoteTag = 'N', kErrorTag = 'E';

void write_all(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the parent is gone or gave up: nothing more to tell
    done += static_cast<size_t>(n);
  }
}

[[noreturn]] void run_child(const std::function<std::string()>& probe, int report_fd) {
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
  std::string report;
  try {
    report = kNoteTag + probe();
  } catch (const InputError& e) {
    // The parent throws this error without repeating the failed read: libhdf5's failure paths
    // (which leak, and which crafted files reach) then run only here.
    report = kErrorTag + e.tensor() + '\0' + e.reason();
  } catch (...) {  // any other failure: the parent's own read reports it
  }
  if (report.size() > kMaxReport) report.resize(kMaxReport);
  write_all(report_fd, report);
  ::_exit(kProbeDone);  // no atexit handlers, no flushing of the parent's buffers
}

/// Reads what the child sends on `report_fd` until it closes (the child exited or died) or the
/// deadline passes, then reaps the child (killed past the deadline). Returns the wait status,
/// or -1 for a timeout.
int wait_until(pid_t pid, int report_fd, double timeout_s, std::string* report) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{report_fd, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (r < 0 && errno != EINTR) break;
    if (r <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(report_fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // closed: the child is gone
    if (report->size() < kMaxReport) report->append(buf, static_cast<size_t>(n));
  }
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return 0;  // reaped elsewhere: nothing more to learn
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // closed its pipe, not yet reaped
  }
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return -1;
}

}  // namespace

std::string probe_in_child(const std::string& path, const std::function<std::string()>& probe, double timeout_s) {
  if (const char* env = std::getenv("MUSPEC_H5_ISOLATION"); env != nullptr && std::strcmp(env, "off") == 0) return {};
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return {};  // cannot isolate (descriptor limit): read in-process as before
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {  // cannot isolate (process limit): read in-process as before
    ::close(fds[0]);
    ::close(fds[1]);
    return {};
  }
  if (pid == 0) {
    ::close(fds[0]);
    run_child(probe, fds[1]);
  }
  ::close(fds[1]);
  std::string report;
  const int status = wait_until(pid, fds[0], timeout_s, &report);
  ::close(fds[0]);
  if (status == -1)
    throw InputError(path, "", "reading it with libhdf5 did not finish within " + std::to_string(static_cast<int>(timeout_s)) +
                                   " s (a corrupt or crafted HDF5 file)");
  if (WIFSIGNALED(status))
    throw InputError(path, "", std::string("libhdf5 crashed reading it (") + strsignal(WTERMSIG(status)) +
                                   "): a corrupt or crafted HDF5 file");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != kProbeDone)
    throw InputError(path, "", "libhdf5 failed reading it (the reading process exited with status " +
                                   std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + "): a corrupt or crafted HDF5 file");
  if (!report.empty() && report[0] == kErrorTag) {
    const size_t sep = report.find('\0');
    if (sep != std::string::npos) throw InputError(path, report.substr(1, sep - 1), report.substr(sep + 1));
    throw InputError(path, "", report.substr(1));  // cut at the cap before the separator
  }
  if (!report.empty() && report[0] == kNoteTag) return report.substr(1);
  return {};
}

}  // namespace muspec
