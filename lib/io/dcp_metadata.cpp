#include "io/dcp_metadata.h"

#include <set>
#include <stdexcept>

#include "core/error.h"
#include "io/mapped_file.h"
#include "io/pickle.h"
#include "io/torch_file.h"

namespace muspec {

namespace {

using pickle::Kind;
using pickle::Value;
using pickle::ValuePtr;

constexpr size_t kMaxRank = 16;

/// A call the allow-list refuses (reported without a byte offset, which the hook does not know).
struct RefusedCall : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const std::set<std::string>& metadata_modules() {
  static const std::set<std::string> m = {"torch.distributed.checkpoint.metadata", "torch.distributed._shard.checkpoint.metadata"};
  return m;
}
const std::set<std::string>& storage_modules() {
  static const std::set<std::string> m = {"torch.distributed.checkpoint.filesystem", "torch.distributed._shard.checkpoint.filesystem"};
  return m;
}
const std::set<std::string>& properties_modules() {  // TensorProperties and its memory-format enum
  static const std::set<std::string> m = {"torch.distributed.checkpoint.metadata", "torch.distributed._shard.sharded_tensor.metadata"};
  return m;
}

bool is_dcp_class(const Value& g) {
  static const std::set<std::string> meta = {"Metadata", "TensorStorageMetadata", "BytesStorageMetadata",
                                             "ChunkStorageMetadata", "MetadataIndex", "StorageMeta"};
  if (metadata_modules().count(g.module) && meta.count(g.name)) return true;
  if (properties_modules().count(g.module) && g.name == "TensorProperties") return true;
  return storage_modules().count(g.module) && g.name == "_StorageInfo";
}

bool is_memory_format_enum(const Value& g) {
  return properties_modules().count(g.module) && (g.name == "_MEM_FORMAT_ENCODING" || g.name == "MEM_FORMAT_ENCODING");
}

const Value* first_arg(const ValuePtr& args, Kind k) {
  if (!args || args->kind != Kind::Tuple || args->items.empty() || args->items[0]->kind != k) return nullptr;
  return args->items[0].get();
}

ValuePtr text(const std::string& s) {
  ValuePtr v = pickle::make_value(Kind::String);
  v->text = s;
  return v;
}

/// The only calls a DCP `.metadata` makes, each rebuilt as data; everything else is refused.
ValuePtr dcp_reduce(const Value& fn, const ValuePtr& args) {
  const std::string q = fn.qualified_name();
  if (is_dcp_class(fn)) return nullptr;  // an inert object; BUILD gives it its fields
  if (q == "torch.Size" && first_arg(args, Kind::Tuple)) return args->items[0];
  if (q == "torch.serialization._get_layout" && first_arg(args, Kind::String)) return args->items[0];
  if (q == "collections.OrderedDict") return pickle::make_value(Kind::Dict);
  if (is_memory_format_enum(fn) && first_arg(args, Kind::Int)) return args->items[0];  // by value (Python < 3.11)
  if (q == "builtins.getattr") {  // Python >= 3.11: getattr(EnumClass, "NAME"), for the memory-format enum only
    const Value* cls = first_arg(args, Kind::Global);
    if (cls && is_memory_format_enum(*cls) && args->items.size() == 2 && args->items[1]->kind == Kind::String)
      return args->items[1];
    throw RefusedCall("builtins.getattr is accepted only for DCP's memory-format enum, not here");
  }
  if (fn.module == "pathlib" && (fn.name == "PosixPath" || fn.name == "PurePosixPath" || fn.name == "WindowsPath" ||
                                 fn.name == "PureWindowsPath" || fn.name == "Path")) {  // StorageMeta.checkpoint_id
    std::string joined;
    for (const auto& part : args && args->kind == Kind::Tuple ? args->items : std::vector<ValuePtr>{})
      if (part->kind == Kind::String) joined += (joined.empty() ? "" : "/") + part->text;
    return text(joined);
  }
  throw RefusedCall("global " + q + " is not on the DCP metadata allow-list (nothing is executed)");
}

/// Reads fields of the rebuilt objects; every failure names the file and key.
class Reader {
 public:
  explicit Reader(const std::string& file) : file_(file) {}

  [[noreturn]] void fail(const std::string& key, const std::string& why) const { throw InputError(file_, key, why); }

  const Value& object(const ValuePtr& v, const char* cls, const std::string& key) const {
    if (!v || v->kind != Kind::Object || v->name != cls) fail(key, std::string("expected a DCP ") + cls + " object");
    return *v;
  }
  /// A dataclass field (from the BUILD state dict); nullptr when absent.
  ValuePtr field(const Value& obj, const char* name) const { return obj.state ? obj.state->get(name) : nullptr; }
  ValuePtr required(const Value& obj, const char* name, const std::string& key) const {
    ValuePtr v = field(obj, name);
    if (!v) fail(key, std::string(obj.name) + " has no '" + name + "'");
    return v;
  }

  uint64_t count(const ValuePtr& v, const char* what, const std::string& key) const {
    if (!v || v->kind != Kind::Int || v->integer < 0) fail(key, std::string(what) + " is not a non-negative integer");
    return static_cast<uint64_t>(v->integer);
  }

  std::vector<int64_t> dims(const ValuePtr& v, const char* what, const std::string& key) const {
    if (!v || (v->kind != Kind::Tuple && v->kind != Kind::List)) fail(key, std::string(what) + " is not a tuple of integers");
    if (v->items.size() > kMaxRank) fail(key, std::string(what) + " has more than 16 dimensions");
    std::vector<int64_t> out;
    for (const auto& x : v->items) out.push_back(static_cast<int64_t>(count(x, what, key)));
    return out;
  }

  std::vector<std::string> strings(const ValuePtr& v, const char* what, const std::string& key) const {
    std::vector<std::string> out;
    if (!v || v->kind == Kind::None) return out;
    if (v->kind != Kind::List && v->kind != Kind::Tuple) fail(key, std::string(what) + " is not a list");
    for (const auto& x : v->items) {
      if (x->kind == Kind::String) out.push_back(x->text);
      else if (x->kind == Kind::Int) out.push_back(std::to_string(x->integer));  // a list index
      else fail(key, std::string(what) + " holds something other than names and indices");
    }
    return out;
  }

 private:
  const std::string& file_;
};

std::string dims_text(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

/// Element count times element size, refused when it overflows.
void check_extent(const Reader& r, const DcpTensor& t) {
  uint64_t n = static_cast<uint64_t>(std::max(1, dtype_bits(t.dtype.value_or(DType::U8)) / 8));
  for (int64_t d : t.shape)
    if (!checked_mul(n, static_cast<uint64_t>(d), &n)) r.fail(t.key, "shape overflows");
}

DcpTensor read_tensor(const Reader& r, const std::string& key, const Value& meta) {
  DcpTensor t;
  t.key = key;
  t.path = {key};
  const Value& props = r.object(r.required(meta, "properties", key), "TensorProperties", key);
  // TensorProperties pickles its fields as a tuple (dtype, layout, requires_grad, memory format, pin_memory).
  const ValuePtr& state = props.state;
  const ValuePtr dtype = state && state->kind == Kind::Tuple && !state->items.empty() ? state->items[0] : r.field(props, "dtype");
  if (!dtype || dtype->kind != Kind::Global || dtype->module != "torch") r.fail(key, "TensorProperties has no torch dtype");
  t.dtype_label = dtype->name;
  t.dtype = torch_dtype_from_name(dtype->name);
  t.shape = r.dims(r.required(meta, "size", key), "size", key);
  check_extent(r, t);
  const ValuePtr chunks = r.required(meta, "chunks", key);
  if (chunks->kind != Kind::List) r.fail(key, "chunks is not a list");
  for (const auto& c : chunks->items) {
    const Value& cm = r.object(c, "ChunkStorageMetadata", key);
    DcpChunk chunk;
    chunk.offsets = r.dims(r.required(cm, "offsets", key), "chunk offsets", key);
    chunk.sizes = r.dims(r.required(cm, "sizes", key), "chunk sizes", key);
    if (chunk.offsets.size() != t.shape.size() || chunk.sizes.size() != t.shape.size())
      r.fail(key, "a chunk's rank differs from the tensor's (" + std::to_string(t.shape.size()) + ")");
    t.chunks.push_back(std::move(chunk));
  }
  return t;
}

DcpStorage read_storage(const Reader& r, const Value& info, const std::string& key) {
  DcpStorage s;
  const ValuePtr path = r.required(info, "relative_path", key);
  if (path->kind != Kind::String) r.fail(key, "relative_path is not a string");
  if (const std::string why = relative_path_problem(path->text); !why.empty()) r.fail(key, "storage file name '" + path->text + "' " + why);
  s.relative_path = path->text;
  s.offset = r.count(r.required(info, "offset", key), "storage offset", key);
  s.length = r.count(r.required(info, "length", key), "storage length", key);
  uint64_t end;
  if (!checked_add(s.offset, s.length, &end)) r.fail(key, "storage offset + length overflows");
  s.transforms = r.strings(r.field(info, "transform_descriptors"), "transform_descriptors", key);
  return s;
}

/// Attaches storage_data's entries to the chunks they describe: (key, chunk offsets) must match
/// exactly one entry, and every entry must describe a chunk or a bytes item.
void attach_storage(const Reader& r, const ValuePtr& storage_data, DcpMetadata& md) {
  if (!storage_data || storage_data->kind != Kind::Dict) r.fail("", "storage_data is not a dict");
  std::map<std::pair<std::string, std::vector<int64_t>>, DcpStorage> by_chunk;
  std::set<std::string> bytes(md.byte_items.begin(), md.byte_items.end());
  for (size_t i = 0; i + 1 < storage_data->items.size(); i += 2) {
    const Value& index = r.object(storage_data->items[i], "MetadataIndex", "");
    const ValuePtr fqn = r.required(index, "fqn", "");
    if (fqn->kind != Kind::String) r.fail("", "MetadataIndex.fqn is not a string");
    const Value& info = r.object(storage_data->items[i + 1], "_StorageInfo", fqn->text);
    DcpStorage s = read_storage(r, info, fqn->text);
    const ValuePtr offset = r.field(index, "offset");
    if (!offset || offset->kind == Kind::None) {
      if (!bytes.count(fqn->text)) r.fail(fqn->text, "storage entry without chunk offsets for a key that is not a bytes item");
      continue;
    }
    auto key = std::make_pair(fqn->text, r.dims(offset, "MetadataIndex.offset", fqn->text));
    if (!by_chunk.emplace(key, std::move(s)).second) r.fail(fqn->text, "two storage entries for one chunk");
  }
  for (DcpTensor& t : md.tensors)
    for (DcpChunk& c : t.chunks) {
      const auto it = by_chunk.find({t.key, c.offsets});
      if (it == by_chunk.end()) r.fail(t.key, "the chunk at offsets " + dims_text(c.offsets) + " has no storage entry in storage_data");
      c.storage = std::move(it->second);
      by_chunk.erase(it);
    }
  if (!by_chunk.empty()) r.fail(by_chunk.begin()->first.first, "storage_data lists a chunk that state_dict_metadata does not");
}

void attach_paths(const Reader& r, const ValuePtr& planner_data, DcpMetadata& md) {
  if (!planner_data || planner_data->kind != Kind::Dict) return;  // optional: older writers, custom planners
  std::map<std::string, std::vector<std::string>> paths;
  for (size_t i = 0; i + 1 < planner_data->items.size(); i += 2) {
    const ValuePtr& k = planner_data->items[i];
    if (k->kind != Kind::String) r.fail("", "planner_data has a key that is not a string");
    paths[k->text] = r.strings(planner_data->items[i + 1], "planner_data path", k->text);
  }
  for (DcpTensor& t : md.tensors)
    if (const auto it = paths.find(t.key); it != paths.end() && !it->second.empty()) t.path = it->second;
}

}  // namespace

DcpMetadata parse_dcp_metadata(const uint8_t* data, uint64_t size, const std::string& file) {
  if (size > kDcpMaxMetadataBytes) throw InputError(file, "", "DCP metadata larger than 1 GiB");
  ValuePtr root;
  try {
    root = pickle::parse(data, size, dcp_reduce);
  } catch (const pickle::PickleError& e) {
    throw InputError(file, "", std::string("not a readable DCP metadata pickle: ") + e.what());
  } catch (const RefusedCall& e) {
    throw InputError(file, "", std::string("refused DCP metadata: ") + e.what());
  }
  const Reader r(file);
  const Value& meta = r.object(root, "Metadata", "");
  DcpMetadata md;
  md.module_family = meta.module.rfind(".metadata") == meta.module.size() - 9 ? meta.module.substr(0, meta.module.size() - 9) : meta.module;
  const ValuePtr sdm = r.required(meta, "state_dict_metadata", "");
  if (sdm->kind != Kind::Dict) r.fail("", "state_dict_metadata is not a dict");
  for (size_t i = 0; i + 1 < sdm->items.size(); i += 2) {
    const ValuePtr& k = sdm->items[i];
    if (k->kind != Kind::String) r.fail("", "state_dict_metadata has a key that is not a string");
    const ValuePtr& v = sdm->items[i + 1];
    if (v->kind == Kind::Object && v->name == "BytesStorageMetadata") md.byte_items.push_back(k->text);
    else md.tensors.push_back(read_tensor(r, k->text, r.object(v, "TensorStorageMetadata", k->text)));
  }
  attach_storage(r, r.required(meta, "storage_data", ""), md);
  attach_paths(r, r.field(meta, "planner_data"), md);
  return md;
}

}  // namespace muspec
