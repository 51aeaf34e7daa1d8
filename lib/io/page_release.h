// Keeping a tensor's bytes mapped only while they are used.
#pragma once

#include <cstdint>
#include <memory>

#include "io/mapped_file.h"

namespace muspec {

/// A keepalive for a TensorHandle whose bytes live in `file`'s read-only mapping: it keeps the
/// mapping alive and, when the last handle dies, tells the kernel (madvise MADV_DONTNEED) that
/// the whole pages inside [data, data + size) are no longer needed, so they leave this process's
/// resident set. That is what keeps a scan's memory near one matrix whatever the checkpoint
/// size. It is safe for a private read-only file mapping: a later read of the same bytes (a
/// tied weight, another slice) faults them back in from the page cache, unchanged. Bytes made in
/// memory (MappedFile::from_bytes) are only kept alive, never dropped.
std::shared_ptr<const void> keep_mapped_range(std::shared_ptr<const MappedFile> file, const uint8_t* data, uint64_t size);

}  // namespace muspec
