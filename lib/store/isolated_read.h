// Reading untrusted HDF5 files without letting libhdf5 crash, hang or leak in this process.
//
// libhdf5 1.10 trusts much of what a file says: issue 14 found 37 of 400 random byte mutants
// of a spectra.h5 crashing inside it (variable-length string reads, attribute close), where no
// check from outside the library can see the problem first, and its failure paths keep what they
// had allocated. So a store is read by a forked child that runs the reader and sends what it read
// back through a pipe, as messages this process decodes (store/store_transport.h). This process
// never runs libhdf5 on the file: a child killed by a signal, one that exits any other way, or one
// that runs past its deadline makes the file an InputError here; a child whose read failed with
// an InputError sends that error back and this process throws it. Private to lib/store.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/error.h"

namespace muspec {

/// How long a child may take to read a store of `file_bytes`: a minute plus a second per 10 MB,
/// far more than any real store needs; MUSPEC_H5_READ_TIMEOUT (seconds) overrides it.
double isolated_read_timeout_s(int64_t file_bytes);

/// The most bytes one message may hold (a record with a 10^8-value spectrum is 800 MB).
inline constexpr uint64_t kMaxChildMessage = uint64_t{1} << 30;

/// The child's end of the pipe: each send() is one message, delivered whole and in order.
class ChildChannel {
 public:
  explicit ChildChannel(int fd) : fd_(fd) {}
  void send(const std::string& message);
  /// The pipe itself (tests write bytes that are not messages through it).
  int fd() const { return fd_; }

 private:
  int fd_;
};

/// The pipe carries frames: a tag byte, a u64 little-endian length, the payload. kMessageFrame is
/// a message for `receive`; kErrorFrame an error's tensor and reason (NUL-separated, at most
/// kMaxErrorFrame bytes) when `read` threw; kFinishedFrame (empty) when `read` returned.
/// Nothing may follow an error or finished frame.
inline constexpr char kMessageFrame = 'M', kErrorFrame = 'E', kFinishedFrame = 'F';
inline constexpr uint64_t kMaxErrorFrame = 1 << 16;
std::string child_frame(char tag, const std::string& payload);

/// This process's reading of the frames, fed in pieces as they arrive. The bytes come from a
/// process that ran libhdf5 on a crafted file: every tag and length is checked before use.
class ChildFrameParser {
 public:
  /// Hands each complete message to `receive`, in order. After a malformed frame it takes
  /// nothing more (malformed() says why).
  void feed(const char* bytes, size_t n, const std::function<void(std::string&&)>& receive);
  /// The stream ended: a frame cut short is malformed.
  void end();
  bool finished() const { return finished_; }
  /// The error frame's payload, or nullptr.
  const std::string* error() const { return has_error_ ? &error_ : nullptr; }
  /// Why the bytes are not frames, or "".
  const std::string& malformed() const { return malformed_; }

 private:
  std::string pending_, error_, malformed_;
  bool finished_ = false, has_error_ = false;
};

/// The InputError for a child that sent `what` (a description, e.g. "a damaged record: ...")
/// where a well-formed report was due; receivers of its messages throw it too.
InputError child_sent_damaged(const std::string& path, const std::string& what);

/// Runs `read` in a forked child (stdout and stderr sent to /dev/null, crash signals at their
/// default action) and waits at most `timeout_s` seconds for it to finish. Each message the child
/// sends is handed to `receive` here, in order, as it arrives. Returns true when `read` returned
/// in the child (every message it sent was received); false when no child could be run
/// (MUSPEC_H5_ISOLATION=off, for debugging and fuzzing libhdf5; no pipe or fork possible): the
/// caller then reads in this process. Throws the child's InputError (same tensor and reason, at
/// most 64 KB; file = path) when `read` threw one there, InputError(path, "", "reading it failed:
/// <what>") for any other exception there (out of memory, say: this process does not read the
/// file itself instead), and InputError(path, "", reason) when the child crashed, exited
/// otherwise, timed out (it is then killed) or sent bytes that are not frames. An exception from
/// `receive` kills the child and propagates. Call only while no other thread is inside libhdf5
/// (a fork copies its locks).
bool read_in_child(const std::string& path, const std::function<void(ChildChannel&)>& read,
                   const std::function<void(std::string&&)>& receive, double timeout_s);

}  // namespace muspec
