#include "io/dcp.h"

#include <zstd.h>

#include <filesystem>

#include "core/error.h"
#include "core/json_limits.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "io/torch_file.h"
#include "io/zip.h"

namespace muspec {

namespace fs = std::filesystem;

namespace {

std::string dims_text(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

uint64_t element_bytes(const DcpTensor& t) { return static_cast<uint64_t>(std::max(1, dtype_bits(t.dtype.value_or(DType::U8)) / 8)); }

/// Bytes of a box of `sizes` (the metadata was checked against overflow for the whole tensor).
uint64_t box_bytes(const DcpTensor& t, const std::vector<int64_t>& sizes) {
  uint64_t n = element_bytes(t);
  for (int64_t s : sizes) n *= static_cast<uint64_t>(s);
  return n;
}

std::string byte_range(const DcpChunk& c) {
  return "bytes [" + std::to_string(c.storage.offset) + ", " + std::to_string(c.storage.offset + c.storage.length) + ")";
}

/// Megatron-Core marks a torch_dist checkpoint with metadata.json {"sharded_backend": "torch_dist"}.
bool is_megatron_torch_dist(const fs::path& dir) {
  const fs::path p = dir / "metadata.json";
  std::error_code ec;
  if (!fs::is_regular_file(p, ec)) return false;
  try {
    const nlohmann::json j = read_json_file(p.string());
    return j.is_object() && j.value("sharded_backend", "") == "torch_dist";
  } catch (const InputError&) {
    return false;
  }
}

/// Version 1 of DCP's zstd stream transform ("stream.zstd/1").
bool is_zstd_transform(const std::vector<std::string>& t) {
  return t.size() == 1 && t[0].rfind("stream.zstd/", 0) == 0 && t[0].substr(12, 1) == "1";
}

/// Decompresses one zstd stream, refusing more than `cap` bytes out (a zstd bomb).
std::vector<uint8_t> zstd_decompress(const uint8_t* src, uint64_t size, uint64_t cap, const std::string& what) {
  const unsigned long long declared = ZSTD_getFrameContentSize(src, size);
  if (declared == ZSTD_CONTENTSIZE_ERROR) throw std::runtime_error("not a zstd frame");
  if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared > cap)
    throw std::runtime_error("declares " + std::to_string(declared) + " decompressed bytes, more than the " + std::to_string(cap) + " " + what);
  std::unique_ptr<ZSTD_DStream, size_t (*)(ZSTD_DStream*)> ds(ZSTD_createDStream(), ZSTD_freeDStream);
  if (!ds) throw std::bad_alloc();
  std::vector<uint8_t> out(std::min<uint64_t>(cap + 1, std::max<uint64_t>(size * 4, 1 << 16)));
  ZSTD_inBuffer in{src, static_cast<size_t>(size), 0};
  ZSTD_outBuffer ob{out.data(), out.size(), 0};
  size_t ret = 1;
  while (ret != 0) {
    if (ob.pos == ob.size) {  // grow, but never past cap + 1: one byte over proves the bomb
      if (ob.size > cap) throw std::runtime_error("decompresses to more than the " + std::to_string(cap) + " " + what);
      out.resize(std::min<uint64_t>(cap + 1, static_cast<uint64_t>(out.size()) * 2));
      ob.dst = out.data();
      ob.size = out.size();
    }
    const size_t before = in.pos + ob.pos;
    ret = ZSTD_decompressStream(ds.get(), &ob, &in);
    if (ZSTD_isError(ret)) throw std::runtime_error(std::string("corrupt zstd stream: ") + ZSTD_getErrorName(ret));
    if (ret != 0 && in.pos == in.size && ob.pos < ob.size && in.pos + ob.pos == before) throw std::runtime_error("truncated zstd stream");
  }
  if (ob.pos > cap) throw std::runtime_error("decompresses to more than the " + std::to_string(cap) + " " + what);
  if (in.pos != in.size) throw std::runtime_error("bytes after the end of the zstd frame");
  out.resize(ob.pos);
  return out;
}

/// The only tensor of a chunk's torch.save archive, checked against the chunk's sizes.
TensorHandle single_tensor(const TorchFile& tf, const DcpChunk& c, const std::string& key) {
  if (tf.entries().size() != 1)
    throw InputError(tf.path(), key, "the chunk archive holds " + std::to_string(tf.entries().size()) + " tensors, not one");
  if (tf.entries()[0].shape != c.sizes)
    throw InputError(tf.path(), key, "the chunk archive holds a tensor of shape " + dims_text(tf.entries()[0].shape) +
                                         " where the metadata says " + dims_text(c.sizes));
  return tf.load(0);
}

}  // namespace

bool is_dcp_metadata_name(const std::string& path) { return fs::path(path).filename() == ".metadata"; }

std::unique_ptr<DcpCheckpoint> DcpCheckpoint::open(const std::string& metadata_path) {
  std::unique_ptr<DcpCheckpoint> d(new DcpCheckpoint());
  d->path_ = metadata_path;
  const fs::path dir = fs::path(metadata_path).parent_path();
  d->dir_ = dir.empty() ? "." : dir.string();
  {
    const auto meta = MappedFile::open(metadata_path);
    d->md_ = parse_dcp_metadata(meta->data(), meta->size(), metadata_path);
  }
  d->layout_ = plan_dcp_layout(d->md_, is_megatron_torch_dist(d->dir_), fs::path(d->dir_).filename().string());
  d->unreadable_ = d->layout_.unreadable;
  d->map_files();
  d->check_tensors();
  d->list_entries();
  return d;
}

std::string DcpCheckpoint::file_path(const std::string& relative) const { return (fs::path(dir_) / relative).string(); }

// Maps every file a chunk names (a missing file fails only the tensors that use it).
void DcpCheckpoint::map_files() {
  for (const DcpTensor& t : md_.tensors)
    for (const DcpChunk& c : t.chunks) {
      if (files_.count(c.storage.relative_path)) continue;
      try {
        files_[c.storage.relative_path] = MappedFile::open(file_path(c.storage.relative_path));
      } catch (const InputError&) {
        files_[c.storage.relative_path] = nullptr;
      }
    }
}

// From metadata alone: each chunk's bytes inside its file, the chunks covering the tensor once.
void DcpCheckpoint::check_tensors() {
  chunks_.resize(md_.tensors.size());
  readable_.assign(md_.tensors.size(), true);
  for (size_t i = 0; i < md_.tensors.size(); ++i) {
    const DcpTensor& t = md_.tensors[i];
    try {
      for (const DcpChunk& c : t.chunks) {
        const std::string file = file_path(c.storage.relative_path);
        const auto& mapped = files_.at(c.storage.relative_path);
        if (!mapped) throw InputError(file, t.key, "the shard file is missing or unreadable");
        if (c.storage.offset > mapped->size() || c.storage.length > mapped->size() - c.storage.offset)
          throw InputError(file, t.key, "the metadata places a chunk at " + byte_range(c) + ", past the end of the file (" +
                                            std::to_string(mapped->size()) + " bytes)");
        chunks_[i].push_back(TensorChunk{c.offsets, c.sizes, file, [this, &t, &c] { return read_chunk(t, c); }});
      }
      check_chunk_coverage(t.key, t.shape, chunks_[i]);
      for (const DcpChunk& c : t.chunks)  // inside the tensor now, so its byte count cannot overflow
        if (c.storage.transforms.empty() && c.storage.length < box_bytes(t, c.sizes))
          throw InputError(file_path(c.storage.relative_path), t.key,
                           "the metadata gives the chunk at offsets " + dims_text(c.offsets) + " " + std::to_string(c.storage.length) +
                               " bytes, fewer than its " + dims_text(c.sizes) + " elements take (" +
                               std::to_string(box_bytes(t, c.sizes)) + "): it cannot hold them");
    } catch (const InputError& e) {
      readable_[i] = false;
      chunks_[i].clear();
      const bool named = e.reason().find(e.file()) != std::string::npos;  // chunk_assembly names the files itself
      unreadable_.push_back({t.key, named ? e.reason() : e.file() + ": " + e.reason()});
    }
  }
}

void DcpCheckpoint::list_entries() {
  for (const DcpEntryPlan& p : layout_.entries) {
    const DcpTensor& t = md_.tensors[p.tensor];
    if (!readable_[p.tensor]) continue;
    TensorEntry e;
    e.name = p.name;
    e.file = dir_;
    e.dtype = p.unsupported.empty() ? t.dtype : std::nullopt;
    e.dtype_label = t.dtype_label;
    e.unsupported = p.unsupported;
    e.shape = t.shape;
    if (p.layer >= 0) e.shape.erase(e.shape.begin());
    e.nbytes = box_bytes(t, e.shape);
    entries_.push_back(std::move(e));
  }
  std::vector<DcpEntryPlan> kept;  // parallel to entries_
  for (const DcpEntryPlan& p : layout_.entries)
    if (readable_[p.tensor]) kept.push_back(p);
  layout_.entries = std::move(kept);
}

TensorHandle DcpCheckpoint::load(size_t index) const {
  if (index >= entries_.size()) throw UsageError("tensor index out of range");
  const DcpEntryPlan& p = layout_.entries[index];
  const DcpTensor& t = md_.tensors[p.tensor];
  if (!entries_[index].dtype) throw InputError(dir_, entries_[index].name, entries_[index].unsupported.empty() ? "dtype " + t.dtype_label + " is not supported" : entries_[index].unsupported);
  const TensorRegion region = p.layer >= 0 ? TensorRegion::leading_slice(t.shape, p.layer) : TensorRegion::whole(t.shape);
  TensorHandle h = assemble_region(entries_[index].name, t.shape, *t.dtype, chunks_[p.tensor], region);
  if (p.layer >= 0 && h.view.shape.size() == t.shape.size()) {  // drop the layer axis (size 1)
    h.view.shape.erase(h.view.shape.begin());
    h.view.strides.erase(h.view.strides.begin());
  }
  return h;
}

TensorHandle DcpCheckpoint::read_chunk(const DcpTensor& t, const DcpChunk& c) const {
  const std::string file = file_path(c.storage.relative_path);
  if (!c.storage.transforms.empty()) {
    if (!is_zstd_transform(c.storage.transforms))
      throw InputError(file, t.key, "chunk at " + byte_range(c) + " uses the stream transform '" + c.storage.transforms[0] +
                                        "'; muspec reads only stream.zstd/1");
    return read_zstd_chunk(t, c, file);
  }
  const auto& mapped = files_.at(c.storage.relative_path);
  const uint8_t* at = mapped->data() + c.storage.offset;
  const uint64_t left = mapped->size() - c.storage.offset;
  if (!has_zip_magic(at, left) && left >= 9 && at[8] == '{') return read_safetensors_chunk(t, c, file);  // SAFETENSORS mode
  try {
    const auto view = MappedFile::view(mapped, c.storage.offset, c.storage.length, file);
    return single_tensor(*TorchFile::open_mapped(view), c, t.key);
  } catch (const InputError& e) {
    throw InputError(file, t.key, "chunk at " + byte_range(c) + ": " + e.reason());
  }
}

TensorHandle DcpCheckpoint::read_zstd_chunk(const DcpTensor& t, const DcpChunk& c, const std::string& file) const {
  const auto& mapped = files_.at(c.storage.relative_path);
  const uint64_t cap = box_bytes(t, c.sizes) + kArchiveSlackBytes;
  std::vector<uint8_t> bytes;
  try {
    bytes = zstd_decompress(mapped->data() + c.storage.offset, c.storage.length, cap,
                            "bytes its tensor chunk and a torch.save archive around it can take (refused as a zstd bomb)");
  } catch (const std::runtime_error& e) {
    throw InputError(file, t.key, "zstd chunk at " + byte_range(c) + ": " + e.what());
  }
  try {
    return single_tensor(*TorchFile::open_mapped(MappedFile::from_bytes(std::move(bytes), file)), c, t.key);
  } catch (const InputError& e) {
    throw InputError(file, t.key, "zstd chunk at " + byte_range(c) + " (decompressed): " + e.reason());
  }
}

// torch >= 2.8 SAFETENSORS mode: the file ends with one safetensors blob (after any BYTE_IO
// items), which starts at the offset every tensor item of the file records; the tensor is named
// by its key and `__metadata__["DCP_SHARDING_INFO"]` gives its saved offsets.
TensorHandle DcpCheckpoint::read_safetensors_chunk(const DcpTensor& t, const DcpChunk& c, const std::string& file) const {
  std::shared_ptr<const SafetensorsFile> st;
  const std::string cache_key = c.storage.relative_path + "@" + std::to_string(c.storage.offset);
  {
    std::lock_guard<std::mutex> lock(safetensors_mutex_);
    auto& slot = safetensors_[cache_key];
    if (!slot) {
      const auto& mapped = files_.at(c.storage.relative_path);
      slot = std::make_shared<const SafetensorsFile>(MappedFile::view(mapped, c.storage.offset, mapped->size() - c.storage.offset, file));
    }
    st = slot;
  }
  const long i = st->find(t.key);
  if (i < 0) throw InputError(file, t.key, "the file's safetensors blob holds no tensor of this name");
  if (st->entries()[static_cast<size_t>(i)].shape != c.sizes)
    throw InputError(file, t.key, "the safetensors tensor has shape " + dims_text(st->entries()[static_cast<size_t>(i)].shape) +
                                      " where the metadata says " + dims_text(c.sizes));
  const auto info = st->metadata().find("DCP_SHARDING_INFO");
  if (info == st->metadata().end()) throw InputError(file, t.key, "safetensors-mode .distcp without __metadata__[\"DCP_SHARDING_INFO\"]");
  nlohmann::json j;
  try {
    j = parse_json_limited(info->second, file);
  } catch (const InputError& e) {
    throw InputError(file, t.key, "DCP_SHARDING_INFO: " + e.reason());
  }
  const auto& entry = j.is_object() && j.contains(t.key) ? j[t.key] : nlohmann::json();
  if (!entry.is_object() || !entry.contains("saved_offsets") || !entry["saved_offsets"].is_array() ||
      entry["saved_offsets"].size() != c.offsets.size())
    throw InputError(file, t.key, "DCP_SHARDING_INFO has no saved_offsets of the tensor's rank for it");
  for (size_t d = 0; d < c.offsets.size(); ++d)
    if (!entry["saved_offsets"][d].is_number_integer() || entry["saved_offsets"][d].get<int64_t>() != c.offsets[d])
      throw InputError(file, t.key, "DCP_SHARDING_INFO saved_offsets disagree with the metadata's chunk offsets " + dims_text(c.offsets));
  return st->load(static_cast<size_t>(i));
}

}  // namespace muspec
