// NumPy .npz archives: a ZIP of .npy members (checkpoint-formats.md §5.1).
#pragma once

#include <memory>
#include <string>

#include "io/tensor_source.h"

namespace muspec {

/// Opens an .npz archive. Each member "<name>.npy" becomes tensor "<name>" (dotted names such as
/// "layers.0.attn" are kept); members not ending in ".npy" and directory entries are skipped.
///
/// Stored members (np.savez) are parsed and viewed in place in the memory map. Deflated members
/// (np.savez_compressed) have only their header inflated at open; load() inflates the whole
/// member into an owned buffer (size-capped and CRC-checked) that the handle keeps alive.
/// Every member's data length is checked against its header's shape at open. TensorEntry::file
/// is the archive path. Throws InputError naming the archive and, where known, the tensor.
std::unique_ptr<TensorSource> open_npz(const std::string& path);

}  // namespace muspec
