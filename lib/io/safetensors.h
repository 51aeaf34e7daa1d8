// safetensors files (single and sharded) and a safetensors writer.
//
// Layout (checkpoint-formats.md §1): u64 LE header length N, N bytes of UTF-8 JSON
// `{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end)}, "__metadata__": {..}}`,
// then the data section; offsets are relative to byte 8+N. The reader applies every check of the
// reference implementation (§1.3) and a few more (duplicate keys, header starting with '{').
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "io/mapped_file.h"
#include "io/tensor_source.h"

namespace muspec {

/// Largest header accepted, in bytes (the reference's MAX_HEADER_SIZE).
constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;

/// One validated, memory-mapped .safetensors file.
///
/// entries() are in data-section order (sorted by data_offsets, ties by name); `file` is the
/// path given, `dtype_label` the dtype string, `nbytes` = end - begin. load() returns a
/// contiguous little-endian view into the map (zero copy); its keepalive holds the map.
class SafetensorsFile : public TensorSource {
 public:
  /// Maps and validates `path`. Throws InputError(path, tensor_or_empty, reason).
  explicit SafetensorsFile(const std::string& path);
  /// Validates a safetensors file held in `file` (a byte range of a DCP `.distcp` file);
  /// errors and entries name `file->path()`.
  explicit SafetensorsFile(std::shared_ptr<const MappedFile> file);

  const std::string& path() const override { return path_; }
  const std::vector<TensorEntry>& entries() const override { return entries_; }
  TensorHandle load(size_t index) const override;

  /// The `__metadata__` string map (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  /// Index of the entry called `name`, or -1.
  long find(const std::string& name) const;

 private:
  std::string path_;
  std::shared_ptr<const MappedFile> file_;
  std::vector<TensorEntry> entries_;
  std::vector<uint64_t> begins_;  ///< data_offsets[0] of each entry, relative to the data section
  uint64_t data_start_ = 0;       ///< 8 + N
  std::map<std::string, std::string> metadata_;
};

/// Opens one .safetensors file.
std::unique_ptr<TensorSource> open_safetensors(const std::string& path);

/// Opens a sharded checkpoint from its `*.safetensors.index.json`
/// (`{"metadata": {...}, "weight_map": {"tensor": "shard file"}}`, metadata optional and opaque).
/// Shard names are relative to the index's directory; absolute names and `..` components are
/// rejected. Every shard named is opened and validated; every weight_map tensor must exist in
/// its shard, and no tensor name may occur in two shards. The source lists the union of all
/// shards' tensors (shards in name order, each in data order); TensorEntry::file is the shard.
std::unique_ptr<TensorSource> open_safetensors_index(const std::string& path);

/// A tensor to write: `bytes` is its little-endian row-major data, exactly
/// numel(shape) × dtype_bits(dtype) / 8 bytes long.
struct SafetensorsTensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::string bytes;
};

/// Writes a .safetensors file atomically (temp file + rename). Tensors are laid out in the
/// order given and the header is padded with spaces so that 8+N is a multiple of 8.
/// `metadata` becomes `__metadata__` when non-empty. Throws UsageError for an empty, reserved
/// or repeated name, a negative dimension or a byte count that does not match the shape, and
/// muspec::Error when the file cannot be written.
void write_safetensors(const std::string& path, const std::vector<SafetensorsTensor>& tensors,
                       const std::map<std::string, std::string>& metadata);

/// True when `s` is well-formed UTF-8 (no overlong forms, surrogates or code points above
/// U+10FFFF). On failure `*bad_offset` (if non-null) receives the offset of the bad sequence.
bool is_valid_utf8(std::string_view s, uint64_t* bad_offset = nullptr);

}  // namespace muspec
