// open_tensor_file(): picks a reader by file name, and checks the name against the content so
// that a mislabelled file gets a clear error instead of a confusing one from the wrong parser.
#include <cstring>

#include "core/error.h"
#include "io/dcp.h"
#include "io/deepspeed.h"
#include "io/mapped_file.h"
#include "io/npy.h"
#include "io/npz.h"
#include "io/safetensors.h"
#include "io/tensor_source.h"
#include "io/torch_file.h"
#include "io/zip.h"

namespace muspec {

namespace {

enum class Kind { Safetensors, SafetensorsIndex, Npy, Npz, Torch, Dcp, Unknown };

bool ends_with(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

Kind kind_from_name(const std::string& path) {
  if (ends_with(path, ".safetensors.index.json")) return Kind::SafetensorsIndex;
  if (is_dcp_metadata_name(path)) return Kind::Dcp;
  if (ends_with(path, ".safetensors")) return Kind::Safetensors;
  if (ends_with(path, ".npy")) return Kind::Npy;
  if (ends_with(path, ".npz")) return Kind::Npz;
  if (is_torch_file_name(path)) return Kind::Torch;
  return Kind::Unknown;
}

/// What the first bytes say. Safetensors has no magic: a plausible length then '{'.
Kind kind_from_content(const MappedFile& f) {
  if (has_npy_magic(f.data(), f.size())) return Kind::Npy;
  if (has_zip_magic(f.data(), f.size())) return Kind::Npz;  // or another ZIP, e.g. torch.save
  if (f.size() >= 9 && f.data()[8] == '{' && load_le64(f.data()) <= f.size() - 8)
    return Kind::Safetensors;
  return Kind::Unknown;
}

const char* describe(Kind k) {
  switch (k) {
    case Kind::Npy: return "it starts with the NumPy .npy magic";
    case Kind::Npz: return "it starts with a ZIP signature (an .npz or torch.save archive?)";
    case Kind::Safetensors: return "it looks like a safetensors file";
    default: return "its content is not recognised";
  }
}

std::unique_ptr<TensorSource> open_as(Kind k, const std::string& path) {
  switch (k) {
    case Kind::Safetensors: return open_safetensors(path);
    case Kind::SafetensorsIndex: return open_safetensors_index(path);
    case Kind::Npy: return open_npy(path);
    case Kind::Npz: return open_npz(path);
    case Kind::Torch: return TorchFile::open(path);
    case Kind::Dcp: return DcpCheckpoint::open(path);
    default: break;
  }
  throw InputError(path, "", "unrecognised tensor file (expected .safetensors, "
                             ".safetensors.index.json, .npy, .npz, a torch.save .pt/.pth/.bin/.ckpt, or a DCP .metadata)");
}

}  // namespace

std::unique_ptr<TensorSource> open_tensor_file(const std::string& path) {
  if (is_deepspeed_checkpoint_file(path)) return open_deepspeed_checkpoint(path);  // stands for the whole ZeRO checkpoint
  const Kind by_name = kind_from_name(path);
  if (by_name == Kind::SafetensorsIndex || by_name == Kind::Dcp) return open_as(by_name, path);
  Kind by_content;
  {
    const MappedFile f(path);
    by_content = kind_from_content(f);
  }
  // .bin/.pt are generic names: honour clearly recognised other content (an .npy or a
  // safetensors file saved as weights.bin); everything else goes to the torch.save reader,
  // which tells zip archives from legacy pickle streams itself.
  if (by_name == Kind::Torch)
    return open_as(by_content == Kind::Npy || by_content == Kind::Safetensors ? by_content : Kind::Torch, path);
  if (by_name == Kind::Unknown) return open_as(by_content, path);
  // Safetensors has no magic, so only a recognised *other* format contradicts that name.
  const bool contradicts = by_name == Kind::Safetensors
                               ? (by_content == Kind::Npy || by_content == Kind::Npz)
                               : by_content != by_name;
  if (contradicts) {
    static const char* const kNames[] = {"a safetensors", "a safetensors index", "an .npy", "an .npz", "a torch.save", "a DCP metadata", ""};
    throw InputError(path, "", std::string("not ") + kNames[static_cast<int>(by_name)] + " file: " +
                                   describe(by_content));
  }
  return open_as(by_name, path);
}

bool is_tensor_file_name(const std::string& path) {
  return kind_from_name(path) != Kind::Unknown;
}

}  // namespace muspec
