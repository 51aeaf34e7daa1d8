// The reader interface: a file (or a set of shards) that holds named tensors.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace muspec {

/// What a reader knows about one tensor before loading it.
struct TensorEntry {
  std::string name;                ///< name as stored ("model.layers.0.mlp.up_proj.weight")
  std::string file;                ///< file that holds its bytes (a shard, an .npz member's archive)
  std::optional<DType> dtype;      ///< nullopt when the file's dtype is not one muspec decodes
  std::string dtype_label;         ///< the dtype as spelled in the file ("F32", "<f4", "|O")
  std::vector<int64_t> shape;
  uint64_t nbytes = 0;             ///< bytes the tensor occupies in the file
  std::string unsupported;         ///< when dtype is nullopt: the reader's reason ("object arrays hold Python pickles...")
};

/// How a source's tensors are stored when each is pieced together from several files.
struct ShardingInfo {
  std::string format;   ///< "" (not sharded), "dcp" (PyTorch Distributed Checkpoint), ...
  int64_t shards = 0;   ///< shard files the checkpoint's tensors are pieced together from
};

/// A tensor a source holds but cannot offer, and why.
struct UnreadableTensor {
  std::string tensor, reason;
};

/// A source of named tensors. Implementations validate the whole file structure on open
/// (every offset, length and shape bounds-checked) and load tensors lazily.
/// load() is safe to call concurrently from several threads.
class TensorSource {
 public:
  virtual ~TensorSource() = default;
  /// The path the user gave (a file, or a sharded index).
  virtual const std::string& path() const = 0;
  virtual const std::vector<TensorEntry>& entries() const = 0;
  /// The tensor's bytes as a checked view. Throws InputError naming file and tensor.
  virtual TensorHandle load(size_t index) const = 0;
  /// Sharded checkpoints: the format and the number of shard files ({} for a plain file).
  virtual ShardingInfo sharding() const { return {}; }
  /// Tensors present in the files that cannot be read as tensors (a scan reports each as
  /// skipped), e.g. optimizer state in a layout that cannot be reassembled.
  virtual std::vector<UnreadableTensor> unreadable() const { return {}; }
};

/// Opens a tensor file by content and name: `*.safetensors`, a sharded
/// `*.safetensors.index.json`, `*.npy`, `*.npz`. Throws InputError for anything else or for a
/// malformed file.
std::unique_ptr<TensorSource> open_tensor_file(const std::string& path);

/// True when `path` looks like a file open_tensor_file() understands (by name).
bool is_tensor_file_name(const std::string& path);

}  // namespace muspec
