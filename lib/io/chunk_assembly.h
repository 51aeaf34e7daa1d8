// The one step every sharded format goes through: the pieces of one tensor, stored in many
// files (DCP `__R_K.distcp` chunks, DeepSpeed ZeRO flat partitions), placed at their global
// offsets into the tensor — or only into the region being analysed, so memory is bounded by that
// region (one matrix of a stacked [L, out, in] tensor), never by the checkpoint.
//
// Coverage is checked from metadata alone, before any byte is read: every chunk inside the
// tensor, no two chunks overlapping, no element left uncovered. Each failure is an InputError
// that names the tensor and the files involved.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace muspec {

/// One stored piece of a tensor.
struct TensorChunk {
  std::vector<int64_t> offsets;  ///< where the chunk starts in the global tensor, one per dimension
  std::vector<int64_t> sizes;    ///< its extent per dimension (same rank as the tensor)
  std::string file;              ///< the file that holds it (for messages)
  /// Reads the chunk. The returned view must have shape == sizes (any strides the reader
  /// proved in bounds). Called only when the chunk intersects the requested region; may be
  /// called from several threads for different chunks.
  std::function<TensorHandle()> load;
};

/// Throws InputError(file of the offending chunk, tensor, reason) unless `chunks` cover the
/// tensor of `shape` exactly once: a rank mismatch, a negative offset or size, a chunk outside
/// the tensor, two chunks overlapping (both files named), or elements no chunk holds (how
/// many). `shape` is the global shape the metadata declares.
void check_chunk_coverage(const std::string& tensor, const std::vector<int64_t>& shape,
                          const std::vector<TensorChunk>& chunks);

/// A box inside the global tensor.
struct TensorRegion {
  std::vector<int64_t> offsets, sizes;
  /// The whole tensor of `shape`.
  static TensorRegion whole(const std::vector<int64_t>& shape);
  /// Slice `index` along the leading dimension: offsets {index, 0, ...}, sizes {1, shape[1:]...}.
  static TensorRegion leading_slice(const std::vector<int64_t>& shape, int64_t index);
};

/// Copies the part of every chunk that intersects `region` into one owned, contiguous,
/// row-major buffer of `dtype` with shape region.sizes (the returned handle keeps it alive).
/// Call check_chunk_coverage() first. Every loaded chunk must have shape == its sizes, dtype ==
/// `dtype` and the same byte order as the others; otherwise InputError naming the tensor and the
/// chunk's file. The buffer is the only allocation proportional to the data.
TensorHandle assemble_region(const std::string& tensor, const std::vector<int64_t>& shape,
                             DType dtype, const std::vector<TensorChunk>& chunks,
                             const TensorRegion& region);

}  // namespace muspec
