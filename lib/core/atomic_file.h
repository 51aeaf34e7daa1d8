// Write-then-rename for every output file: a reader never sees a half-written file, and a
// failed run leaves the previous file (if any) untouched.
#pragma once

#include <string>

namespace muspec {

/// Usage:
///   AtomicOutput out("spectra.h5");
///   write_whatever(out.temp_path());   // any API that writes to a path
///   out.commit();                      // rename(temp, final); throws on failure
/// If commit() is never called (an exception unwinds), the temporary file is removed.
class AtomicOutput {
 public:
  explicit AtomicOutput(std::string final_path);
  ~AtomicOutput();
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;

  const std::string& temp_path() const { return temp_; }
  const std::string& final_path() const { return final_; }
  void commit();

 private:
  std::string final_, temp_;
  bool committed_ = false;
};

/// Writes `contents` to `path` atomically. Throws muspec::Error naming the path on failure.
void write_file_atomically(const std::string& path, const std::string& contents);

}  // namespace muspec
