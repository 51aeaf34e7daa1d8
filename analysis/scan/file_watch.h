// Telling a file that changed while a scan read it (rewritten, truncated, appended to).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>

namespace muspec {

/// Size and modification time of each input file, taken when the scan opens it, compared
/// again after each tensor is read: a tensor read from a file that changed in between may mix
/// old and new bytes (or zeros, past a truncation: io/bus_guard.h), so it is not reported.
class FileWatch {
 public:
  /// Records `path`'s size and mtime now, unless it is recorded already. Not thread-safe:
  /// call while opening files, before the workers start.
  void remember(const std::string& path);
  /// Why `path` is not as remembered ("changed during the scan: size 1024 -> 0 bytes"), or ""
  /// when it is (or was never remembered). Thread-safe once remember() calls are over.
  std::string change(const std::string& path) const;

 private:
  struct Stamp {
    bool exists = false;
    int64_t size = 0;
    int64_t mtime_ns = 0;
    dev_t dev = 0;
    ino_t ino = 0;
  };
  static Stamp stamp_of(const std::string& path);
  std::map<std::string, Stamp> stamps_;
};

/// The reason given for a tensor whose bytes came from a file truncated under the reader.
inline const char* kTruncatedDuringScan =
    "the file changed during the scan: it was truncated while this tensor was read (the bytes "
    "past its new end read as zeros); not analysed";

}  // namespace muspec
