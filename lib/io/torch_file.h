// PyTorch checkpoints written by torch.save: the zip format (PyTorch >= 1.6, ZIP64, 64-byte
// aligned stored records) and the legacy format (a sequence of pickles followed by raw
// storages). Nothing is executed: data.pkl goes through muspec's restricted pickle reader.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "io/pickle.h"
#include "io/tensor_source.h"

namespace muspec {

/// A tensor as torch.save describes it: a strided view into a storage record.
struct TorchTensorRef {
  std::string storage_key;       ///< record name under data/ (zip) or the legacy storage key
  DType dtype = DType::F32;      ///< element type of the tensor
  uint64_t storage_bytes = 0;    ///< size of the storage as declared by the persistent id
  int64_t storage_offset = 0;    ///< in elements
  std::vector<int64_t> shape, strides;
};

/// The TorchTensorRef inside a pickle value produced by this reader, or nullptr.
const TorchTensorRef* as_tensor(const pickle::Value& v);

/// An opened torch.save file. Tensors are named by their path in the saved object: dict keys
/// joined with '/', list/tuple positions as numbers. A plain state_dict therefore gives the
/// usual parameter names; `ckpt.pt` from nanoGPT gives "model/transformer.h.0.attn.c_attn.weight"
/// and "optimizer/state/0/exp_avg".
class TorchFile : public TensorSource {
 public:
  const std::string& path() const override { return path_; }
  const std::vector<TensorEntry>& entries() const override { return entries_; }
  TensorHandle load(size_t index) const override;

  /// The whole saved object (for optimizer state: param_groups, hyper-parameters).
  const pickle::ValuePtr& root() const { return root_; }
  /// How entry `index` refers to its storage (tied weights share storage, offset and shape).
  const TorchTensorRef& tensor_ref(size_t index) const { return refs_.at(index); }
  /// "zip" or "legacy".
  const std::string& format() const { return format_; }

  static std::unique_ptr<TorchFile> open(const std::string& path);
  /// Opens a torch.save archive held in `bytes` (a byte range of a larger file, or bytes
  /// decompressed in memory: a DCP chunk); entries name `bytes->path()` as their file.
  static std::unique_ptr<TorchFile> open_mapped(std::shared_ptr<const class MappedFile> bytes);

 private:
  struct Storage { uint64_t offset = 0, size = 0; };  // byte range in the mapping
  void collect(const pickle::ValuePtr& v, const std::string& prefix, std::unordered_set<const pickle::Value*>& seen);
  void open_zip();
  void open_legacy();

  std::string path_, format_;
  std::shared_ptr<const class MappedFile> file_;
  ByteOrder byte_order_ = ByteOrder::Little;
  pickle::ValuePtr root_;
  std::vector<TensorEntry> entries_;
  std::vector<TorchTensorRef> refs_;              // parallel to entries_
  std::unordered_map<std::string, Storage> storages_;  // storage key -> bytes in the mapping
};

/// The DType of a `torch.<name>` dtype global ("float32", "bfloat16", "half", ...), or nullopt.
std::optional<DType> torch_dtype_from_name(const std::string& name);

/// True for names torch checkpoints commonly have: *.pt, *.pth, *.bin, *.ckpt.
bool is_torch_file_name(const std::string& path);

}  // namespace muspec
