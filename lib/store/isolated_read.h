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

/// Runs `probe` in a forked child (stdout and stderr sent to /dev/null, crash signals at their
/// default action) and waits at most `timeout_s` seconds. Returns the note `probe` returned
/// there (at most 64 KB; how the read went, e.g. which path it took), or "" when the child was
/// not run (MUSPEC_H5_ISOLATION=off, for debugging and fuzzing libhdf5; no fork possible) or
/// `probe` threw something other than InputError. Throws the child's InputError (same tensor
/// and reason, file = path) when `probe` threw one there, and InputError(path, "", reason) when
/// the child crashed, exited otherwise, or timed out (it is then killed).
/// Call only while no other thread is inside libhdf5 (a fork copies its locks).
std::string probe_in_child(const std::string& path, const std::function<std::string()>& probe, double timeout_s);

}  // namespace muspec
