// Write-then-rename for every output file: a reader never sees a half-written file, and a
// failed run leaves the previous file (if any) untouched. Several outputs of one command are
// committed as one unit with an OutputTransaction.
#pragma once

#include <string>
#include <vector>

namespace muspec {

/// Usage:
///   AtomicOutput out("spectra.h5");
///   write_whatever(out.temp_path());   // any API that writes to a path
///   out.commit();                      // fsync, then rename(temp, final); throws on failure
/// If commit() is never called (an exception unwinds), the temporary file is removed.
///
/// * The temporary is `<final>.tmp.<pid>.<8 hex digits>` beside the final file. Temporaries
///   of that pattern left by processes that no longer run (a kill during the write phase) are
///   removed when the next output of the same name is created, with a note on stderr.
/// * A symbolic link at the final path is kept: its target is written (the temporary is made
///   beside the target, so the rename stays on one file system).
/// * An existing final file keeps its permission bits; a new one gets 0666 minus the umask.
/// * The file and then its directory are fsynced, so a committed output survives a crash.
/// * While an OutputTransaction is open on this thread, commit() only stages the file; the
///   transaction renames every staged file at once.
class AtomicOutput {
 public:
  explicit AtomicOutput(std::string final_path);
  ~AtomicOutput();
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;

  const std::string& temp_path() const { return temp_; }
  /// The path written: the given path, or the target of a symbolic link there.
  const std::string& final_path() const { return final_; }
  void commit();

 private:
  std::string final_, temp_;
  bool committed_ = false;
};

/// All outputs of one command, or none: while it is open, every AtomicOutput::commit() on this
/// thread (write_file_atomically, write_spectra_h5, ...) fsyncs its temporary and stages it;
/// commit() then renames them all. If one rename fails, the outputs already renamed are rolled
/// back (the previous files, kept as hard links until the end, are put back) and commit()
/// throws; if the transaction is destroyed without commit() (an error in a later write), every
/// staged temporary is removed and no output changes. While renaming, commit() holds an
/// exclusive flock() on each output directory, so two runs writing the same outputs commit one
/// after the other (the last one wins whole), never interleaved. Transactions do not nest.
class OutputTransaction {
 public:
  OutputTransaction();
  ~OutputTransaction();
  OutputTransaction(const OutputTransaction&) = delete;
  OutputTransaction& operator=(const OutputTransaction&) = delete;

  void commit();

  /// Internal: AtomicOutput::commit() hands its fsynced temporary over.
  void stage(const std::string& temp, const std::string& final);

 private:
  struct Staged {
    std::string temp, final, backup;  ///< backup: a hard link to the previous final file, or ""
  };
  void discard() noexcept;
  std::vector<Staged> staged_;
  bool committed_ = false;
};

/// Writes `contents` to `path` atomically. Throws muspec::Error naming the path on failure.
void write_file_atomically(const std::string& path, const std::string& contents);

/// Removes `<final>.tmp.<pid>.<hex>` (and `.old.` backups) beside `final` whose process no
/// longer runs; returns the paths removed. Called by AtomicOutput's constructor.
std::vector<std::string> remove_stale_temporaries(const std::string& final);

/// Throws UsageError when `path` (after following symbolic links) exists and is not a regular
/// file: a device, FIFO, directory or socket would be replaced by the rename that commits an
/// output. Commands call it for every output before doing any work; AtomicOutput checks again.
void check_output_target(const std::string& path);

}  // namespace muspec
