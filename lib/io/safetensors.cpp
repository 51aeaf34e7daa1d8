#include "io/safetensors.h"
#include "io/page_release.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_limits.h"

namespace muspec {

namespace {

using nlohmann::json;
constexpr int kMaxJsonDepth = 32;  // real headers nest 3 deep

std::string shape_text(const std::vector<uint64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string range_text(uint64_t b, uint64_t e) {
  return "[" + std::to_string(b) + ", " + std::to_string(e) + ")";
}

/// Parses `text` as JSON, rejecting duplicate keys in any object and nesting deeper than
/// kMaxJsonDepth. Throws InputError(file, "", reason) naming `what` ("header", "index").
/// Linear in the header size (a 10^5-tensor header once took minutes in nlohmann's callback
/// mode, which rescans the parent object after each member; docs/reliability.md).
json parse_strict_json(std::string_view text, const std::string& file, const std::string& what) {
  JsonLimits limits;
  limits.max_depth = kMaxJsonDepth;
  limits.reject_duplicate_keys = true;
  limits.syntax_label = "invalid " + what + " JSON";
  return parse_json_limited(text, file, limits);
}

/// A header entry after type checks, before offset validation.
struct RawTensor {
  std::string name;
  DType dtype;
  std::string label;
  std::vector<uint64_t> shape;
  uint64_t begin = 0, end = 0;
};

uint64_t json_uint(const json& v, const std::string& file, const std::string& name,
                   const char* field) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer())
    throw InputError(file, name, std::string(field) + " holds a negative value " + v.dump());
  throw InputError(file, name,
                   std::string(field) + " must hold non-negative integers, found " + v.dump());
}

RawTensor parse_tensor_info(const std::string& name, const json& info, const std::string& file) {
  if (!info.is_object()) throw InputError(file, name, "header entry is not a JSON object");
  RawTensor t;
  t.name = name;
  const auto dt = info.find("dtype");
  const auto sh = info.find("shape");
  const auto off = info.find("data_offsets");
  if (dt == info.end() || sh == info.end() || off == info.end())
    throw InputError(file, name, "header entry needs dtype, shape and data_offsets");
  if (!dt->is_string()) throw InputError(file, name, "dtype is not a string");
  t.label = dt->get<std::string>();
  const auto parsed = dtype_from_name(t.label);
  if (!parsed) throw InputError(file, name, "unknown dtype '" + t.label + "'");
  t.dtype = *parsed;
  if (!sh->is_array()) throw InputError(file, name, "shape is not an array");
  for (const auto& d : *sh) t.shape.push_back(json_uint(d, file, name, "shape"));
  if (!off->is_array() || off->size() != 2)
    throw InputError(file, name, "data_offsets is not an array of two integers");
  t.begin = json_uint((*off)[0], file, name, "data_offsets");
  t.end = json_uint((*off)[1], file, name, "data_offsets");
  return t;
}

std::map<std::string, std::string> parse_metadata(const json& m, const std::string& file) {
  std::map<std::string, std::string> out;
  if (m.is_null()) return out;
  if (!m.is_object()) throw InputError(file, "", "__metadata__ is not a JSON object");
  for (const auto& [k, v] : m.items()) {
    if (!v.is_string())
      throw InputError(file, "", "__metadata__ value of '" + k + "' is not a string");
    out[k] = v.get<std::string>();
  }
  return out;
}

/// Checks one tensor (already in offset order) against the running end of the previous one,
/// in the reference's order: offsets, overflow, whole bytes, size. Returns its byte count.
uint64_t check_tensor(const RawTensor& t, const RawTensor* prev, const std::string& file) {
  const uint64_t expected_begin = prev ? prev->end : 0;
  const std::string where = "data_offsets " + range_text(t.begin, t.end);
  if (t.begin != expected_begin) {
    if (!prev)
      throw InputError(file, t.name, where + ": the first tensor must start at byte 0 of the data section");
    const std::string kind = t.begin > expected_begin ? "leave a gap of " + std::to_string(t.begin - expected_begin)
                                                      : "overlap by " + std::to_string(expected_begin - t.begin);
    throw InputError(file, t.name, where + " " + kind + " bytes after tensor '" + prev->name +
                                       "', which ends at " + std::to_string(prev->end));
  }
  if (t.end < t.begin) throw InputError(file, t.name, where + " end before they begin");
  const std::string desc = t.label + " " + shape_text(t.shape);
  uint64_t bits = 1;
  for (uint64_t d : t.shape)
    if (!checked_mul(bits, d, &bits)) throw InputError(file, t.name, desc + ": element count overflows 64 bits");
  if (!checked_mul(bits, static_cast<uint64_t>(dtype_bits(t.dtype)), &bits))
    throw InputError(file, t.name, desc + ": size in bits overflows 64 bits");
  if (bits % 8 != 0)
    throw InputError(file, t.name, desc + " is " + std::to_string(bits) + " bits, not a whole number of bytes");
  if (t.end - t.begin != bits / 8)
    throw InputError(file, t.name, where + " give " + std::to_string(t.end - t.begin) + " bytes but " + desc +
                                       " needs " + std::to_string(bits / 8));
  for (uint64_t d : t.shape)
    if (d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      throw InputError(file, t.name, desc + ": dimension " + std::to_string(d) + " exceeds 2^63-1");
  return bits / 8;
}

/// Reads and bounds-checks the length prefix; returns N.
uint64_t header_length(const MappedFile& f) {
  const std::string& file = f.path();
  if (f.size() < 8)
    throw InputError(file, "", "file is " + std::to_string(f.size()) +
                                   " bytes, too short for the 8-byte header length");
  const uint64_t n = load_le64(f.data());
  if (n > kSafetensorsMaxHeaderBytes)
    throw InputError(file, "", "header length " + std::to_string(n) + " exceeds the limit of " +
                                   std::to_string(kSafetensorsMaxHeaderBytes) + " bytes");
  if (n + 8 > f.size())  // n <= 1e8, so no overflow
    throw InputError(file, "", "header length " + std::to_string(n) + " runs past the end of the " +
                                   std::to_string(f.size()) + "-byte file");
  return n;
}

}  // namespace

bool is_valid_utf8(std::string_view s, uint64_t* bad_offset) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const uint8_t c = p[i];
    if (c < 0x80) { ++i; continue; }
    size_t len;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; min = 0x10000; }
    else len = 0;
    bool ok = len != 0 && len <= n - i;
    for (size_t k = 1; ok && k < len; ++k) {
      ok = (p[i + k] & 0xC0) == 0x80;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if (!ok || cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      if (bad_offset) *bad_offset = i;
      return false;
    }
    i += len;
  }
  return true;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : SafetensorsFile(MappedFile::open(path)) {}

SafetensorsFile::SafetensorsFile(std::shared_ptr<const MappedFile> file) : path_(file->path()), file_(std::move(file)) {
  const uint64_t n = header_length(*file_);
  data_start_ = 8 + n;
  const std::string_view text(reinterpret_cast<const char*>(file_->data() + 8), n);
  uint64_t bad = 0;
  if (!is_valid_utf8(text, &bad))
    throw InputError(path_, "", "header is not valid UTF-8 (bad byte at header offset " + std::to_string(bad) + ")");
  if (text.empty() || text[0] != '{') throw InputError(path_, "", "header does not start with '{'");
  const json header = parse_strict_json(text, path_, "header");
  if (!header.is_object()) throw InputError(path_, "", "header is not a JSON object");

  std::vector<RawTensor> raw;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") metadata_ = parse_metadata(info, path_);
    else raw.push_back(parse_tensor_info(name, info, path_));
  }
  std::sort(raw.begin(), raw.end(), [](const RawTensor& a, const RawTensor& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  uint64_t data_end = 0;
  for (size_t i = 0; i < raw.size(); ++i) {
    const RawTensor& t = raw[i];
    TensorEntry e;
    e.name = t.name;
    e.file = path_;
    e.dtype = t.dtype;
    e.dtype_label = t.label;
    e.shape.assign(t.shape.begin(), t.shape.end());
    e.nbytes = check_tensor(t, i ? &raw[i - 1] : nullptr, path_);
    data_end = t.end;
    entries_.push_back(std::move(e));
    begins_.push_back(t.begin);
  }
  uint64_t needed = 0;
  const std::string have = std::to_string(file_->size());
  if (!checked_add(data_end, data_start_, &needed) || needed > file_->size())
    throw InputError(path_, "", "file is truncated: the header describes " + std::to_string(data_end) +
                                    " data bytes after byte " + std::to_string(data_start_) +
                                    " but the file has " + have + " bytes");
  if (needed < file_->size())
    throw InputError(path_, "", std::to_string(file_->size() - needed) +
                                    " trailing bytes after the last tensor (data ends at byte " +
                                    std::to_string(needed) + " of " + have + ")");
}

TensorHandle SafetensorsFile::load(size_t index) const {
  if (index >= entries_.size())
    throw UsageError("tensor index " + std::to_string(index) + " out of range for " + path_);
  const TensorEntry& e = entries_[index];
  TensorHandle h;
  h.view.dtype = *e.dtype;
  h.view.byte_order = ByteOrder::Little;
  h.view.shape = e.shape;
  // A zero-size tensor may have huge other dimensions whose stride products overflow.
  const bool empty = std::find(e.shape.begin(), e.shape.end(), 0) != e.shape.end();
  h.view.strides = empty ? std::vector<int64_t>(e.shape.size(), 1) : TensorView::contiguous_strides(e.shape);
  h.view.data = file_->data() + data_start_ + begins_[index];
  h.view.reachable_bytes = e.nbytes;
  const std::string problem = h.view.bounds_problem();
  if (!problem.empty()) throw InputError(path_, e.name, problem);
  h.keepalive = keep_mapped_range(file_, h.view.data, e.nbytes);  // pages leave RSS with the handle
  return h;
}

long SafetensorsFile::find(const std::string& name) const {
  for (size_t i = 0; i < entries_.size(); ++i)
    if (entries_[i].name == name) return static_cast<long>(i);
  return -1;
}

std::unique_ptr<TensorSource> open_safetensors(const std::string& path) {
  return std::make_unique<SafetensorsFile>(path);
}

// ---------------------------------------------------------------- sharded checkpoints

namespace {

/// The union of several shards, in shard-name order.
class ShardedSafetensors : public TensorSource {
 public:
  ShardedSafetensors(std::string path, std::vector<std::shared_ptr<const SafetensorsFile>> shards)
      : path_(std::move(path)), shards_(std::move(shards)) {
    for (size_t s = 0; s < shards_.size(); ++s)
      for (size_t i = 0; i < shards_[s]->entries().size(); ++i) {
        entries_.push_back(shards_[s]->entries()[i]);
        where_.emplace_back(s, i);
      }
  }
  const std::string& path() const override { return path_; }
  const std::vector<TensorEntry>& entries() const override { return entries_; }
  TensorHandle load(size_t index) const override {
    if (index >= entries_.size())
      throw UsageError("tensor index " + std::to_string(index) + " out of range for " + path_);
    return shards_[where_[index].first]->load(where_[index].second);
  }

 private:
  std::string path_;
  std::vector<std::shared_ptr<const SafetensorsFile>> shards_;
  std::vector<TensorEntry> entries_;
  std::vector<std::pair<size_t, size_t>> where_;  ///< (shard, index in shard)
};

}  // namespace

std::unique_ptr<TensorSource> open_safetensors_index(const std::string& path) {
  const auto file = MappedFile::open(path);
  if (file->size() > kSafetensorsMaxHeaderBytes)
    throw InputError(path, "", "index is " + std::to_string(file->size()) + " bytes, above the limit of " +
                                   std::to_string(kSafetensorsMaxHeaderBytes));
  const std::string_view text(reinterpret_cast<const char*>(file->data()), file->size());
  if (!is_valid_utf8(text)) throw InputError(path, "", "index is not valid UTF-8");
  const json index = parse_strict_json(text, path, "index");
  if (!index.is_object()) throw InputError(path, "", "index is not a JSON object");
  const auto wm = index.find("weight_map");
  if (wm == index.end() || !wm->is_object())
    throw InputError(path, "", "index has no \"weight_map\" object");

  std::map<std::string, std::vector<std::string>> by_shard;  // shard -> tensors it must hold
  for (const auto& [tensor, shard] : wm->items()) {
    if (!shard.is_string()) throw InputError(path, tensor, "weight_map value is not a string");
    const std::string name = shard.get<std::string>();
    const std::string problem = relative_path_problem(name);
    if (!problem.empty()) throw InputError(path, tensor, "shard name '" + name + "' " + problem);
    by_shard[name].push_back(tensor);
  }
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  std::vector<std::shared_ptr<const SafetensorsFile>> shards;
  std::map<std::string, std::string> owner;  // tensor -> shard that holds it
  for (const auto& [name, tensors] : by_shard) {
    auto shard = std::make_shared<const SafetensorsFile>((dir / name).string());
    for (const auto& t : tensors)
      if (shard->find(t) < 0)
        throw InputError(path, t, "weight_map places it in '" + name + "', which has no such tensor");
    for (const auto& e : shard->entries()) {
      const auto [it, fresh] = owner.emplace(e.name, name);
      if (!fresh)
        throw InputError(path, e.name, "tensor appears in two shards, '" + it->second + "' and '" + name + "'");
    }
    shards.push_back(std::move(shard));
  }
  return std::make_unique<ShardedSafetensors>(path, std::move(shards));
}

// ---------------------------------------------------------------- writer

void write_safetensors(const std::string& path, const std::vector<SafetensorsTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    if (t.name.empty() || t.name == "__metadata__" || header.contains(t.name))
      throw UsageError("write_safetensors: empty, reserved or repeated tensor name '" + t.name + "'");
    uint64_t bits = static_cast<uint64_t>(dtype_bits(t.dtype));
    for (int64_t d : t.shape)
      if (d < 0 || !checked_mul(bits, static_cast<uint64_t>(d), &bits))
        throw UsageError("write_safetensors: bad shape for tensor '" + t.name + "'");
    if (bits % 8 != 0 || bits / 8 != t.bytes.size())
      throw UsageError("write_safetensors: tensor '" + t.name + "' has " + std::to_string(t.bytes.size()) +
                       " bytes, which does not match its dtype and shape");
    header[t.name] = {{"dtype", std::string(dtype_name(t.dtype))},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string text = header.dump();
  text.append((8 - (8 + text.size()) % 8) % 8, ' ');
  std::string prefix(8, '\0');
  for (int i = 0; i < 8; ++i) prefix[i] = static_cast<char>((static_cast<uint64_t>(text.size()) >> (8 * i)) & 0xff);

  AtomicOutput out(path);
  {
    std::ofstream f(out.temp_path(), std::ios::binary | std::ios::trunc);
    if (!f) throw Error("cannot create '" + out.temp_path() + "'");
    f << prefix << text;
    for (const auto& t : tensors) f.write(t.bytes.data(), static_cast<std::streamsize>(t.bytes.size()));
    f.flush();
    if (!f) throw Error("cannot write '" + out.temp_path() + "'");
  }
  out.commit();
}

}  // namespace muspec
