// A PyTorch Distributed Checkpoint (DCP) directory as one tensor source: torchtitan `step-N/`,
// accelerate FSDP `pytorch_model_fsdp_0/` and `optimizer_0/`, Megatron-Core `torch_dist`
// `iter_N/` (checkpoint-formats.md §4.2–4.3, docs/runs.md "Sharded checkpoints").
//
// At open: `.metadata` is parsed (io/dcp_metadata.h), every `__R_K.distcp` file it names is
// mapped, every chunk's byte range is checked against its file and every tensor's chunks
// against its shape (check_chunk_coverage). A tensor that fails is reported by unreadable()
// and the others stay readable. At load: the chunks that intersect the tensor (or the one layer
// of a Megatron stack) are read — each a complete torch.save archive at its byte range, zstd-
// compressed when its storage says `stream.zstd`, or a tensor of the file's safetensors blob in
// torch >= 2.8's SAFETENSORS mode — and assembled (assemble_region) into one buffer the size of
// that tensor or layer. Memory is bounded by it, never by the checkpoint.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "io/chunk_assembly.h"
#include "io/dcp_layout.h"
#include "io/dcp_metadata.h"
#include "io/tensor_source.h"

namespace muspec {

class MappedFile;
class SafetensorsFile;

class DcpCheckpoint : public TensorSource {
 public:
  /// Opens the checkpoint whose `.metadata` is `metadata_path`. Throws InputError for an
  /// unreadable or hostile `.metadata`; problems of single tensors go to unreadable().
  static std::unique_ptr<DcpCheckpoint> open(const std::string& metadata_path);

  /// The `.metadata` file (its directory is the checkpoint).
  const std::string& path() const override { return path_; }
  const std::vector<TensorEntry>& entries() const override { return entries_; }
  TensorHandle load(size_t index) const override;
  ShardingInfo sharding() const override { return {"dcp", static_cast<int64_t>(files_.size())}; }
  std::vector<UnreadableTensor> unreadable() const override { return unreadable_; }

  /// "torchtitan/DCP", "accelerate FSDP", "Megatron torch_dist".
  const std::string& trainer() const { return layout_.trainer; }

  /// Largest decompressed size accepted for a zstd chunk beyond its tensor bytes (the
  /// torch.save archive around them: zip headers, data.pkl, alignment).
  static constexpr uint64_t kArchiveSlackBytes = uint64_t{1} << 20;

 private:
  DcpCheckpoint() = default;
  void map_files();
  void check_tensors();
  void list_entries();
  TensorHandle read_chunk(const DcpTensor& t, const DcpChunk& c) const;
  TensorHandle read_zstd_chunk(const DcpTensor& t, const DcpChunk& c, const std::string& file) const;
  TensorHandle read_safetensors_chunk(const DcpTensor& t, const DcpChunk& c, const std::string& file) const;
  std::string file_path(const std::string& relative) const;

  std::string path_, dir_;
  DcpMetadata md_;
  DcpLayout layout_;
  std::vector<TensorEntry> entries_;
  std::vector<UnreadableTensor> unreadable_;
  std::vector<std::vector<TensorChunk>> chunks_;                      ///< per md_.tensors
  std::vector<bool> readable_;                                        ///< per md_.tensors
  std::map<std::string, std::shared_ptr<const MappedFile>> files_;    ///< relative path -> mapping
  mutable std::mutex safetensors_mutex_;
  mutable std::map<std::string, std::shared_ptr<const SafetensorsFile>> safetensors_;  ///< file -> its blob
};

/// True when `path` is named `.metadata` (a DCP checkpoint's index).
bool is_dcp_metadata_name(const std::string& path);

}  // namespace muspec
