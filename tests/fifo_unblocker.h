// Lets a test that opens a FIFO fail instead of hanging on code that opens it in blocking
// mode: a helper thread keeps trying a non-blocking open of the write end, which succeeds only
// once a reader waits in open(), and so releases that reader. Code that refuses the FIFO
// before opening it never waits, and the helper stops when the test is done.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

namespace muspec_test {

class FifoUnblocker {
 public:
  explicit FifoUnblocker(std::string path) : path_(std::move(path)), thread_([this] { loop(); }) {}
  ~FifoUnblocker() {
    done_ = true;
    thread_.join();
  }
  bool released_a_reader() const { return released_; }

 private:
  void loop() {
    while (!done_) {
      const int fd = ::open(path_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd >= 0) {
        ::close(fd);
        released_ = true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  std::string path_;
  std::atomic<bool> done_{false}, released_{false};
  std::thread thread_;
};

/// Makes a FIFO at `path` (the test fails if that is impossible).
inline bool make_fifo(const std::string& path) { return ::mkfifo(path.c_str(), 0600) == 0; }

}  // namespace muspec_test
