// Reading untrusted HDF5 files without letting a libhdf5 crash or hang take muspec down.
//
// libhdf5 1.10 trusts much of what a file says: issue 14 found 37 of 400 random byte mutants
// of a spectra.h5 crashing inside it (variable-length string reads, attribute close), where no
// check from outside the library can see the problem first. So a store is first read by a
// forked child that runs the same reader. A child killed by a signal, one that exits any other
// way, or one that runs past its deadline makes the file an InputError here; this process never
// reaches the crash. A child whose read failed with an InputError sends that error back, and
// this process throws it without repeating the read, so libhdf5's failure paths (which leak
// what they had allocated, and which crafted files steer) run only in the child. Only a file
// the child read successfully is read here, and the reader is deterministic, so it is read
// safely again. Private to lib/store.
#pragma once

#include <functional>
#include <string>

namespace muspec {

/// Runs `probe` in a forked child (stdout and stderr sent to /dev/null) and waits at most
/// `timeout_s` seconds. Returns when the child exited 0 after `probe` returned (or threw
/// something other than InputError); throws the child's InputError (same tensor and reason,
/// file = path) when `probe` threw one there; throws InputError(path, "", reason) when the
/// child crashed, exited otherwise, or timed out (it is then killed). MUSPEC_H5_ISOLATION=off skips the child (for debugging and fuzzing libhdf5).
/// Call only while no other thread is inside libhdf5 (a fork copies its locks).
void probe_in_child(const std::string& path, const std::function<void()>& probe, double timeout_s);

/// The same, where a successful `probe` returns a short note for the caller (at most 64 KB;
/// how the read went, e.g. which path it took): returned here, "" when the child was not run
/// (MUSPEC_H5_ISOLATION=off, no fork) or its probe threw something other than InputError.
std::string probe_in_child_with_note(const std::string& path, const std::function<std::string()>& probe,
                                     double timeout_s);

}  // namespace muspec
