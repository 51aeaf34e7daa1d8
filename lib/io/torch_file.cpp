#include "io/torch_file.h"

#include <cstring>

#include "core/error.h"
#include "io/mapped_file.h"
#include "io/page_release.h"
#include "io/zip.h"

namespace muspec {

using pickle::Kind;
using pickle::Value;
using pickle::ValuePtr;

namespace {

constexpr int kMaxRank = 16;

/// Storage classes of the persistent ids (module `torch`).
std::optional<DType> storage_class_dtype(const std::string& name) {
  static const std::pair<const char*, DType> table[] = {
      {"DoubleStorage", DType::F64}, {"FloatStorage", DType::F32}, {"HalfStorage", DType::F16},
      {"BFloat16Storage", DType::BF16}, {"LongStorage", DType::I64}, {"IntStorage", DType::I32},
      {"ShortStorage", DType::I16}, {"CharStorage", DType::I8}, {"ByteStorage", DType::U8},
      {"BoolStorage", DType::BOOL}, {"ComplexFloatStorage", DType::C64}, {"ComplexDoubleStorage", DType::C128}};
  for (const auto& [n, t] : table)
    if (name == n) return t;
  return std::nullopt;
}

}  // namespace

/// `torch.<dtype>` globals (as passed to _rebuild_tensor_v3).
std::optional<DType> torch_dtype_from_name(const std::string& name) {
  static const std::pair<const char*, DType> table[] = {
      {"float64", DType::F64}, {"double", DType::F64}, {"float32", DType::F32}, {"float", DType::F32},
      {"float16", DType::F16}, {"half", DType::F16}, {"bfloat16", DType::BF16}, {"int64", DType::I64},
      {"long", DType::I64}, {"int32", DType::I32}, {"int", DType::I32}, {"int16", DType::I16},
      {"short", DType::I16}, {"int8", DType::I8}, {"uint8", DType::U8}, {"bool", DType::BOOL},
      {"uint16", DType::U16}, {"uint32", DType::U32}, {"uint64", DType::U64}, {"complex64", DType::C64},
      {"complex128", DType::C128}, {"float8_e4m3fn", DType::F8_E4M3}, {"float8_e5m2", DType::F8_E5M2},
      {"float8_e4m3fnuz", DType::F8_E4M3FNUZ}, {"float8_e5m2fnuz", DType::F8_E5M2FNUZ},
      {"float8_e8m0fnu", DType::F8_E8M0}, {"float4_e2m1fn_x2", DType::F4}};
  for (const auto& [n, t] : table)
    if (name == n) return t;
  return std::nullopt;
}

namespace {

struct Custom {  // payload of a Kind::Custom value made by this reader
  TorchTensorRef tensor;
};

const ValuePtr& arg(const ValuePtr& args, size_t i, const char* what) {
  if (!args || args->kind != Kind::Tuple || args->items.size() <= i)
    throw pickle::PickleError(0, std::string(what) + ": missing argument " + std::to_string(i));
  return args->items[i];
}

int64_t as_int(const ValuePtr& v, const char* what) {
  if (v->kind != Kind::Int) throw pickle::PickleError(0, std::string(what) + " is not an integer");
  return v->integer;
}

std::vector<int64_t> as_int_tuple(const ValuePtr& v, const char* what) {
  if (v->kind != Kind::Tuple && v->kind != Kind::List) throw pickle::PickleError(0, std::string(what) + " is not a tuple");
  if (v->items.size() > kMaxRank) throw pickle::PickleError(0, std::string(what) + " has more than 16 dimensions");
  std::vector<int64_t> out;
  for (const auto& x : v->items) {
    const int64_t i = as_int(x, what);
    if (i < 0) throw pickle::PickleError(0, std::string(what) + " has a negative entry " + std::to_string(i));
    out.push_back(i);
  }
  return out;
}

/// Interprets a persistent id: ('storage', storage_type, key, location, numel[, view_metadata]).
void read_storage_id(const ValuePtr& persistent, std::optional<DType> explicit_dtype, TorchTensorRef& t) {
  if (!persistent || persistent->kind != Kind::Persistent) throw pickle::PickleError(0, "tensor storage is not a persistent id");
  const ValuePtr& pid = persistent->args;
  if (pid->kind != Kind::Tuple || pid->items.size() < 5 || pid->items[0]->kind != Kind::String || pid->items[0]->text != "storage")
    throw pickle::PickleError(0, "persistent id is not a ('storage', type, key, location, numel) tuple");
  const ValuePtr& type = pid->items[1];
  if (type->kind != Kind::Global) throw pickle::PickleError(0, "storage type is not a global");
  const ValuePtr& key = pid->items[2];
  t.storage_key = key->kind == Kind::String ? key->text : std::to_string(as_int(key, "storage key"));
  const int64_t numel = as_int(pid->items[4], "storage size");
  if (numel < 0) throw pickle::PickleError(0, "negative storage size");
  const auto sdt = storage_class_dtype(type->name);
  uint64_t esize = 1;  // UntypedStorage: numel counts bytes
  if (sdt) {
    t.dtype = *sdt;
    esize = static_cast<uint64_t>(dtype_bits(*sdt) / 8);
  } else if (type->name != "UntypedStorage" && type->name != "TypedStorage") {
    throw pickle::PickleError(0, "unsupported storage type " + type->qualified_name());
  }
  if (explicit_dtype) t.dtype = *explicit_dtype;
  else if (!sdt) throw pickle::PickleError(0, "untyped storage without a dtype");
  if (!checked_mul(static_cast<uint64_t>(numel), esize, &t.storage_bytes)) throw pickle::PickleError(0, "storage size overflows");
  if (pid->items.size() >= 6 && pid->items[5]->kind == Kind::Tuple) {  // legacy view: (root key, offset, size)
    const auto& view = pid->items[5]->items;
    if (view.size() < 2) throw pickle::PickleError(0, "malformed legacy storage view");
    t.storage_key = view[0]->kind == Kind::String ? view[0]->text : std::to_string(as_int(view[0], "view key"));
    const int64_t view_offset = as_int(view[1], "view offset");
    if (view_offset < 0 || __builtin_add_overflow(t.storage_offset, view_offset, &t.storage_offset))
      throw pickle::PickleError(0, "legacy storage view offset out of range");
  }
}

ValuePtr tensor_value(TorchTensorRef t) {
  ValuePtr v = pickle::make_value(Kind::Custom);
  v->custom = std::make_shared<Custom>(Custom{std::move(t)});
  return v;
}

/// Resolves the torch globals that build values; everything else stays an inert object.
ValuePtr torch_reduce(const Value& fn, const ValuePtr& args) {
  const std::string q = fn.qualified_name();
  if (q == "collections.OrderedDict" || q == "collections.defaultdict" || q == "collections.Counter")
    return pickle::make_value(Kind::Dict);
  if (q == "torch._utils._rebuild_tensor_v2" || q == "torch._utils._rebuild_tensor" || q == "torch._utils._rebuild_tensor_v3") {
    TorchTensorRef t;
    std::optional<DType> dt;
    if (q == "torch._utils._rebuild_tensor_v3") {
      const ValuePtr& d = arg(args, 6, "_rebuild_tensor_v3");
      if (d->kind != Kind::Global || !(dt = torch_dtype_from_name(d->name))) throw pickle::PickleError(0, "_rebuild_tensor_v3 with an unknown dtype");
    }
    t.storage_offset = as_int(arg(args, 1, q.c_str()), "storage_offset");
    if (t.storage_offset < 0) throw pickle::PickleError(0, "negative storage_offset");
    read_storage_id(arg(args, 0, q.c_str()), dt, t);
    t.shape = as_int_tuple(arg(args, 2, q.c_str()), "size");
    t.strides = as_int_tuple(arg(args, 3, q.c_str()), "stride");
    if (t.shape.size() != t.strides.size()) throw pickle::PickleError(0, "size and stride have different lengths");
    return tensor_value(std::move(t));
  }
  if (q == "torch._utils._rebuild_parameter" || q == "torch._utils._rebuild_parameter_with_state" ||
      q == "torch.nn.parameter.Parameter" || q == "torch.Size")
    return arg(args, 0, q.c_str());
  if (q == "torch._tensor._rebuild_from_type_v2") {  // (func, new_type, args, state): apply func
    const ValuePtr& f = arg(args, 0, q.c_str());
    if (f->kind == Kind::Global) return torch_reduce(*f, arg(args, 2, q.c_str()));
    return nullptr;
  }
  if (q == "torch.device") return arg(args, 0, q.c_str());
  return nullptr;
}

std::string join(const std::string& prefix, const std::string& key) { return prefix.empty() ? key : prefix + "/" + key; }

/// A dict key as a path component. Keys that are neither text nor integers (old pickled
/// optimizers key their state by the parameter tensors themselves) are named by their position
/// in the dict, "#k", so that distinct entries keep distinct names.
std::string key_text(const Value& k, size_t position) {
  switch (k.kind) {
    case Kind::String: return k.text;
    case Kind::Int: return std::to_string(k.integer);
    default: return "#" + std::to_string(position);
  }
}

pickle::ValuePtr parse_pickle_bytes(const std::string& file, const uint8_t* data, uint64_t size, uint64_t* used) {
  try {
    return pickle::parse(data, size, torch_reduce, used);
  } catch (const pickle::PickleError& e) {
    throw InputError(file, "", std::string("not a loadable torch pickle: ") + e.what());
  }
}

}  // namespace

const TorchTensorRef* as_tensor(const Value& v) {
  if (v.kind != Kind::Custom || !v.custom) return nullptr;
  return &static_cast<const Custom*>(v.custom.get())->tensor;
}

bool is_torch_file_name(const std::string& p) {
  for (const char* ext : {".pt", ".pth", ".bin", ".ckpt"}) {
    const size_t n = std::strlen(ext);
    if (p.size() > n && p.compare(p.size() - n, n, ext) == 0) return true;
  }
  return false;
}

// Walks the saved object once per container: a container reached twice (shared through the
// memo) is named after its first path only, so a "billion laughs" pickle of shared lists
// costs linear time. Tensors are leaves and are listed under every name (tied weights).
void TorchFile::collect(const ValuePtr& v, const std::string& prefix, std::unordered_set<const Value*>& seen) {
  if (const TorchTensorRef* t = as_tensor(*v)) {
    TensorEntry e;
    e.name = prefix.empty() ? "tensor" : prefix;
    e.file = path_;
    e.dtype = t->dtype;
    e.dtype_label = std::string(dtype_name(t->dtype));
    e.shape = t->shape;
    uint64_t numel = 1;
    for (int64_t d : t->shape) checked_mul(numel, static_cast<uint64_t>(d), &numel);
    checked_mul(numel, static_cast<uint64_t>(std::max(1, dtype_bits(t->dtype) / 8)), &e.nbytes);
    entries_.push_back(std::move(e));
    refs_.push_back(*t);
    return;
  }
  if (!seen.insert(v.get()).second) return;
  switch (v->kind) {
    case Kind::Dict:
    case Kind::Object:
      for (size_t i = 0; i + 1 < v->items.size(); i += 2) collect(v->items[i + 1], join(prefix, key_text(*v->items[i], i / 2)), seen);
      if (v->kind == Kind::Object) {
        if (v->state) collect(v->state, prefix, seen);
        if (v->args) collect(v->args, prefix, seen);
      }
      break;
    case Kind::List:
    case Kind::Tuple:
      for (size_t i = 0; i < v->items.size(); ++i) collect(v->items[i], join(prefix, std::to_string(i)), seen);
      break;
    default: break;
  }
}

void TorchFile::open_zip() {
  format_ = "zip";
  ZipArchive zip(file_);
  if (zip.members().empty()) throw InputError(path_, "", "empty zip archive");
  const std::string& first = zip.members().front().name;
  const auto slash = first.find('/');
  if (slash == std::string::npos) throw InputError(path_, "", "zip member '" + first + "' is not inside a root folder; not a torch.save archive");
  const std::string root = first.substr(0, slash + 1);
  for (const auto& m : zip.members())
    if (m.name.compare(0, root.size(), root) != 0) throw InputError(path_, "", "zip member '" + m.name + "' lies outside the archive's root folder '" + root + "'");
  const ZipMember* pkl = zip.find(root + "data.pkl");
  if (!pkl) throw InputError(path_, "", "no " + root + "data.pkl in the archive; not a torch.save file");
  if (const ZipMember* bo = zip.find(root + "byteorder")) {
    const auto b = zip.read(*bo);
    const std::string s(b.begin(), b.end());
    if (s == "big") byte_order_ = ByteOrder::Big;
    else if (s != "little") throw InputError(path_, "", "byteorder record says '" + s.substr(0, 16) + "'");
  }
  const std::vector<uint8_t> bytes = zip.read(*pkl);
  root_ = parse_pickle_bytes(path_, bytes.data(), bytes.size(), nullptr);
  std::unordered_set<const Value*> seen;
  collect(root_, "", seen);
  for (const auto& r : refs_) {
    if (storages_.count(r.storage_key)) continue;
    const ZipMember* m = zip.find(root + "data/" + r.storage_key);
    if (!m) continue;  // reported when a tensor using it is loaded
    if (m->method != 0) throw InputError(path_, "", "storage record " + m->name + " is compressed; torch.save stores records uncompressed");
    storages_[r.storage_key] = Storage{m->data_offset, m->uncompressed_size};
  }
}

void TorchFile::open_legacy() {
  format_ = "legacy";
  const uint8_t* p = file_->data();
  uint64_t pos = 0, used = 0;
  auto next = [&](const char* what) {
    if (pos >= file_->size()) throw InputError(path_, "", std::string("legacy torch file ends before its ") + what);
    ValuePtr v = parse_pickle_bytes(path_, p + pos, file_->size() - pos, &used);
    pos += used;
    return v;
  };
  const ValuePtr magic = next("magic number");
  static const std::string kMagic("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10);  // 0x1950a86a20f9469cfc6c LE
  if (magic->kind != Kind::BigInt || magic->text != kMagic) throw InputError(path_, "", "not a torch.save file (bad legacy magic number)");
  const ValuePtr version = next("protocol version");
  if (version->kind != Kind::Int || version->integer != 1001) throw InputError(path_, "", "unsupported legacy protocol version");
  const ValuePtr sys_info = next("sys_info");
  if (auto le = sys_info->get("little_endian"); le && le->kind == Kind::Bool && !le->boolean) byte_order_ = ByteOrder::Big;
  root_ = next("object");
  std::unordered_set<const Value*> seen;
  collect(root_, "", seen);
  const ValuePtr keys = next("storage key list");
  if (keys->kind != Kind::List) throw InputError(path_, "", "legacy storage key list is not a list");
  for (const auto& k : keys->items) {
    const std::string key = key_text(*k, 0);
    uint64_t esize = 0;
    for (const auto& r : refs_)
      if (r.storage_key == key) esize = static_cast<uint64_t>(std::max(1, dtype_bits(r.dtype) / 8));
    if (esize == 0) throw InputError(path_, "", "legacy storage '" + key + "' is used by no tensor; its element size is unknown");
    if (file_->size() - pos < 8) throw InputError(path_, "", "legacy file ends inside the header of storage '" + key + "'");
    const uint64_t count = load_le64(p + pos);
    pos += 8;
    uint64_t bytes;
    if (!checked_mul(count, esize, &bytes) || bytes > file_->size() - pos)
      throw InputError(path_, "", "legacy storage '" + key + "' claims " + std::to_string(count) + " elements, past the end of the file");
    storages_[key] = Storage{pos, bytes};
    pos += bytes;
  }
}

std::unique_ptr<TorchFile> TorchFile::open(const std::string& path) { return open_mapped(MappedFile::open(path)); }

std::unique_ptr<TorchFile> TorchFile::open_mapped(std::shared_ptr<const MappedFile> bytes) {
  std::unique_ptr<TorchFile> f(new TorchFile());
  f->path_ = bytes->path();
  f->file_ = std::move(bytes);
  if (has_zip_magic(f->file_->data(), f->file_->size())) f->open_zip();
  else if (f->file_->size() >= 2 && f->file_->data()[0] == 0x80) f->open_legacy();
  else throw InputError(f->path_, "", "not a torch.save file (neither a zip archive nor a legacy pickle stream)");
  return f;
}

TensorHandle TorchFile::load(size_t index) const {
  if (index >= refs_.size()) throw UsageError("tensor index out of range");
  const TorchTensorRef& r = refs_[index];
  const std::string& name = entries_[index].name;
  const auto it = storages_.find(r.storage_key);
  const Storage* s = it == storages_.end() ? nullptr : &it->second;
  if (!s) throw InputError(path_, name, "storage record '" + r.storage_key + "' is missing from the file");
  if (s->size < r.storage_bytes)
    throw InputError(path_, name, "storage record '" + r.storage_key + "' holds " + std::to_string(s->size) + " bytes but its id declares " + std::to_string(r.storage_bytes));
  const uint64_t esize = static_cast<uint64_t>(std::max(1, dtype_bits(r.dtype) / 8));
  uint64_t skip;
  if (!checked_mul(static_cast<uint64_t>(r.storage_offset), esize, &skip) || skip > s->size)
    throw InputError(path_, name, "storage_offset " + std::to_string(r.storage_offset) + " lies past the end of its storage");
  TensorHandle h;
  h.view.dtype = r.dtype;
  h.view.byte_order = byte_order_;
  h.view.shape = r.shape;
  h.view.strides = r.strides;
  h.view.data = file_->data() + s->offset + skip;
  h.view.reachable_bytes = s->size - skip;
  if (std::string why = h.view.bounds_problem(); !why.empty())
    throw InputError(path_, name, "size/stride/offset reach outside the storage: " + why);
  h.keepalive = keep_mapped_range(file_, h.view.data, h.view.extent_bytes());
  return h;
}

}  // namespace muspec
