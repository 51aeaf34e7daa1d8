// Opening input files without hanging or touching devices: a FIFO opened for reading blocks
// until a writer appears (forever, for a FIFO nobody writes), and opening a device can have
// side effects. Every input path is therefore checked by type *before* open() and again on
// the descriptor (the path may be swapped in between).
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string>

namespace muspec {

/// Why a file of this mode is not read as an input ("is a FIFO, not a regular file"),
/// or "" for a regular file.
std::string non_regular_reason(mode_t mode);

/// Throws InputError(path, "", reason) when `path` exists and is neither a regular file nor a
/// directory (a FIFO, socket or device): for paths handed to readers that would block on them.
/// A missing path passes (its reader reports it).
void refuse_special_file(const std::string& path);

/// Opens a regular file read-only (close-on-exec, blocking reads). Throws InputError(path, "",
/// reason) for a missing or unreadable path and for anything that is not a regular file
/// (directory, FIFO, socket, device), without opening FIFOs and devices in blocking mode.
/// The caller owns the returned descriptor.
int open_regular_file(const std::string& path);

/// The whole content of the regular file `path`. Throws InputError when it cannot be opened
/// or read (see open_regular_file) or holds more than `max_bytes`.
std::string read_regular_file(const std::string& path, uint64_t max_bytes = uint64_t{1} << 30);

}  // namespace muspec
