// The `.metadata` file of a PyTorch Distributed Checkpoint (DCP), rebuilt as plain data.
//
// DCP's writer pickles a `Metadata` dataclass (protocol 4; checkpoint-formats.md §4.2) whose
// classes live in `torch.distributed.checkpoint.metadata` / `.filesystem` (torch >= 2.0;
// TensorProperties there from 2.3, before that in `torch.distributed._shard.sharded_tensor.
// metadata`) or, in torch 1.13, `torch.distributed._shard.checkpoint.metadata` / `.filesystem`.
// The pickle goes through muspec's restricted reader with an allow-list of exactly those classes
// (plus torch.Size, torch dtypes and layouts, pathlib paths and the memory-format enum, whose
// Python >= 3.11 spelling `builtins.getattr(EnumClass, "NAME")` is taken as data for that enum
// only). Any other callable global is refused; unknown extra attributes of allow-listed classes
// are ignored. Every offset, length and shape is checked before it is kept.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace muspec {

/// Where one chunk's bytes are: [offset, offset + length) of `relative_path` (a `__R_K.distcp`
/// file beside `.metadata`), possibly transformed ("stream.zstd/1").
struct DcpStorage {
  std::string relative_path;
  uint64_t offset = 0, length = 0;
  std::vector<std::string> transforms;
};

/// One stored chunk of a tensor, with its storage.
struct DcpChunk {
  std::vector<int64_t> offsets, sizes;  ///< in the global tensor, one per dimension
  DcpStorage storage;
};

/// A tensor in `state_dict_metadata`.
struct DcpTensor {
  std::string key;                   ///< the flat DCP key ("optimizer.state.layers.0.wq.weight.exp_avg")
  std::vector<std::string> path;     ///< planner_data's path of the key (dict keys, list indices as text); {key} when absent
  std::optional<DType> dtype;        ///< nullopt: a dtype muspec does not decode
  std::string dtype_label;           ///< "float32", "bfloat16", ...
  std::vector<int64_t> shape;        ///< the global shape
  std::vector<DcpChunk> chunks;
};

struct DcpMetadata {
  std::vector<DcpTensor> tensors;          ///< in the file's order
  std::vector<std::string> byte_items;     ///< keys of BytesStorageMetadata items (pickled objects)
  std::string module_family;               ///< "torch.distributed.checkpoint" or "torch.distributed._shard.checkpoint" (1.13)
};

/// Largest `.metadata` accepted (a 70B model's has a few hundred thousand chunks: tens of MB).
constexpr uint64_t kDcpMaxMetadataBytes = uint64_t{1} << 30;

/// Parses `.metadata` bytes. `file` names it in errors. Throws InputError(file, key-or-"",
/// reason): not a pickle, a refused global, a missing or malformed field, a chunk without a
/// storage entry (or a storage entry without a chunk), a negative or overflowing size, a rank
/// above 16, an unsafe relative path.
DcpMetadata parse_dcp_metadata(const uint8_t* data, uint64_t size, const std::string& file);

}  // namespace muspec
