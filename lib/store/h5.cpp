#include "store/h5.h"

#include <algorithm>
#include <mutex>

namespace muspec::h5 {

namespace {

// Innermost (most specific) message of the calling thread's default HDF5 error stack.
herr_t innermost_error(unsigned n, const H5E_error2_t* err, void* data) {
  auto* out = static_cast<std::string*>(data);
  if (n == 0 && err != nullptr && err->desc != nullptr) *out = err->desc;
  return 0;
}

// Maximum element count of an array attribute or a dataset the reader accepts, whatever the
// file claims; real spectra and quantile lists are far smaller.
constexpr uint64_t kMaxReadArray = uint64_t{1} << 20;
constexpr uint64_t kMaxReadDataset = uint64_t{1} << 31;
constexpr size_t kMaxFixedString = size_t{1} << 20;

Id make_fapl() {
  Id fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, "cannot create a file access property list");
  // SEMI: H5Fclose fails (instead of silently keeping the file open) if any object is still
  // open, so a leaked id shows up as an error.
  check(H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_SEMI), "cannot set the file close degree");
  // Outputs are replaced by rename, never modified in place, so HDF5's file locks protect
  // nothing here; they do fail on some NFS/Lustre mounts.
  check(H5Pset_file_locking(fapl.get(), false, true), "cannot disable file locking");
  return fapl;
}

Id vlen_string_type(H5T_cset_t cset) {
  Id t(H5Tcopy(H5T_C_S1), H5Tclose, "cannot create a string type");
  check(H5Tset_size(t.get(), H5T_VARIABLE), "cannot create a variable-length string type");
  check(H5Tset_cset(t.get(), cset), "cannot set a string character set");
  return t;
}

void check_storable_string(const std::string& s, const std::string& what) {
  if (s.find('\0') != std::string::npos) throw Failure(what + " contains a NUL byte");
  if (!is_valid_utf8(s)) throw Failure(what + " is not valid UTF-8");
}

struct Shape {
  H5S_class_t cls = H5S_NO_CLASS;
  int rank = 0;
  uint64_t count = 0;  // elements; dims[0] for rank 1
};

Shape shape_of(hid_t space) {
  Shape s;
  s.cls = H5Sget_simple_extent_type(space);
  if (s.cls == H5S_NO_CLASS) fail("cannot query a dataspace");
  s.rank = H5Sget_simple_extent_ndims(space);
  if (s.rank < 0) fail("cannot query a dataspace rank");
  if (s.cls == H5S_SIMPLE && s.rank == 1) {
    hsize_t dim = 0;
    if (H5Sget_simple_extent_dims(space, &dim, nullptr) < 0) fail("cannot query a dataspace");
    s.count = dim;
  } else if (s.cls == H5S_SCALAR) {
    s.count = 1;
  }
  return s;
}

Id open_attr(hid_t obj, const std::string& name) {
  if (!has_attr(obj, name)) throw Failure("attribute '" + name + "' is missing");
  return Id(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose,
            ("cannot open attribute '" + name + "'").c_str());
}

// Opens attribute `name`, checks its type class, and returns its shape.
struct OpenedAttr {
  Id attr, type, space;
  Shape shape;
};

OpenedAttr open_attr_checked(hid_t obj, const std::string& name, H5T_class_t want,
                             const char* want_text) {
  OpenedAttr a;
  a.attr = open_attr(obj, name);
  const std::string ctx = "attribute '" + name + "'";
  a.type = Id(H5Aget_type(a.attr.get()), H5Tclose, ("cannot read the type of " + ctx).c_str());
  const H5T_class_t cls = H5Tget_class(a.type.get());
  if (cls == H5T_NO_CLASS) fail("cannot read the type class of " + ctx);
  if (cls != want) throw Failure(ctx + " is not " + want_text);
  a.space = Id(H5Aget_space(a.attr.get()), H5Sclose, ("cannot read the shape of " + ctx).c_str());
  a.shape = shape_of(a.space.get());
  return a;
}

void require_single(const OpenedAttr& a, const std::string& name) {
  const bool single = a.shape.cls == H5S_SCALAR ||
                      (a.shape.cls == H5S_SIMPLE && a.shape.rank == 1 && a.shape.count == 1);
  if (!single) throw Failure("attribute '" + name + "' is not a single value");
}

uint64_t require_array(const OpenedAttr& a, const std::string& name) {
  if (a.shape.cls == H5S_NULL) return 0;
  if (a.shape.cls != H5S_SIMPLE || a.shape.rank != 1)
    throw Failure("attribute '" + name + "' is not a 1-D array");
  if (a.shape.count > kMaxReadArray)
    throw Failure("attribute '" + name + "' has " + std::to_string(a.shape.count) +
                  " values (limit " + std::to_string(kMaxReadArray) + ")");
  return a.shape.count;
}

template <typename T>
void write_attr_scalar(hid_t obj, const std::string& name, hid_t file_type, hid_t mem_type,
                       T value) {
  const std::string ctx = "cannot write attribute '" + name + "'";
  Id space(H5Screate(H5S_SCALAR), H5Sclose, ctx.c_str());
  Id attr(H5Acreate2(obj, name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT),
          H5Aclose, ctx.c_str());
  check(H5Awrite(attr.get(), mem_type, &value), ctx.c_str());
  attr.close(ctx.c_str());
}

template <typename T>
void write_attr_array(hid_t obj, const std::string& name, hid_t file_type, hid_t mem_type,
                      const std::vector<T>& v) {
  if (v.size() * sizeof(T) > kMaxArrayAttributeBytes)
    throw Failure("attribute '" + name + "' would hold " + std::to_string(v.size()) +
                  " values, over HDF5's 64 KiB attribute limit");
  const std::string ctx = "cannot write attribute '" + name + "'";
  const hsize_t n = v.size();
  Id space(H5Screate_simple(1, &n, nullptr), H5Sclose, ctx.c_str());
  Id attr(H5Acreate2(obj, name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT),
          H5Aclose, ctx.c_str());
  if (n > 0) check(H5Awrite(attr.get(), mem_type, v.data()), ctx.c_str());
  attr.close(ctx.c_str());
}

template <typename T>
std::vector<T> read_attr_array(hid_t obj, const std::string& name, H5T_class_t cls,
                               const char* cls_text, hid_t mem_type) {
  OpenedAttr a = open_attr_checked(obj, name, cls, cls_text);
  std::vector<T> v(require_array(a, name));
  if (!v.empty())
    check(H5Aread(a.attr.get(), mem_type, v.data()), ("cannot read attribute '" + name + "'").c_str());
  return v;
}

}  // namespace

Id transfer_for(uint64_t count) {
  constexpr uint64_t kPerElement = 32;  // >= any element here: 16-byte vlen records, 8-byte numbers
  const uint64_t bytes = std::clamp<uint64_t>(count * kPerElement, 1024, uint64_t{1} << 20);
  Id plist(H5Pcreate(H5P_DATASET_XFER), H5Pclose, "cannot create a transfer property list");
  check(H5Pset_buffer(plist.get(), bytes, nullptr, nullptr), "cannot size the transfer buffers");
  return plist;
}

namespace {

template <typename T>
void write_dataset(hid_t loc, const std::string& name, hid_t file_type, hid_t mem_type,
                   const T* data, size_t count) {
  const std::string ctx = "cannot write dataset '" + name + "'";
  const hsize_t n = count;
  Id space(H5Screate_simple(1, &n, nullptr), H5Sclose, ctx.c_str());
  Id dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, ctx.c_str());
  check(H5Pset_obj_track_times(dcpl.get(), false), ctx.c_str());  // same data, same bytes
  Id dset(H5Dcreate2(loc, name.c_str(), file_type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
          H5Dclose, ctx.c_str());
  if (n > 0) check(H5Dwrite(dset.get(), mem_type, H5S_ALL, H5S_ALL, transfer_for(n).get(), data), ctx.c_str());
  dset.close(ctx.c_str());
}

}  // namespace

void init() {
  static std::once_flag once;
  std::call_once(once, [] {
    // No library shutdown at exit: after a failed write (disk full, file size limit) a dataset
    // or file whose close failed stays registered, and libhdf5's atexit handler crashes closing
    // it again (SIGSEGV in H5F__close_cb, after muspec had reported the error). Every file we
    // open is closed explicitly (h5::Id), so nothing is lost without the handler.
    H5dont_atexit();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  });
}

void fail(const std::string& what) {
  std::string detail;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost_error, &detail);
  throw Failure(detail.empty() ? what : what + " (HDF5: " + detail + ")");
}

Id::Id(hid_t id, Closer closer, const char* what) : id_(id), closer_(closer) {
  if (id < 0) {
    id_ = H5I_INVALID_HID;
    fail(what);
  }
}

Id& Id::operator=(Id&& o) noexcept {
  if (this != &o) {
    reset();
    id_ = o.id_;
    closer_ = o.closer_;
    o.id_ = H5I_INVALID_HID;
  }
  return *this;
}

void Id::close(const char* what) {
  if (id_ < 0) return;
  const hid_t id = id_;
  id_ = H5I_INVALID_HID;
  if (closer_(id) < 0) fail(what);
}

void Id::reset() noexcept {
  if (id_ >= 0) closer_(id_);
  id_ = H5I_INVALID_HID;
}

void check(herr_t status, const char* what) {
  if (status < 0) fail(what);
}

Id create_file(const std::string& path) {
  init();
  Id fapl = make_fapl();
  // No object modification times (libhdf5 stores them by default): the same records give the
  // same bytes, whenever they are written (only the `created` attribute tells runs apart).
  Id fcpl(H5Pcreate(H5P_FILE_CREATE), H5Pclose, "cannot create the file");
  check(H5Pset_obj_track_times(fcpl.get(), false), "cannot create the file");
  return Id(H5Fcreate(path.c_str(), H5F_ACC_EXCL, fcpl.get(), fapl.get()), H5Fclose,
            "cannot create the file");
}

Id open_file_readonly(const std::string& path) {
  init();
  Id fapl = make_fapl();
  return Id(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()), H5Fclose,
            "not a readable HDF5 file");
}

Id create_group(hid_t loc, const std::string& name, bool track_order) {
  const std::string ctx = "cannot create group '" + name + "'";
  Id gcpl(H5Pcreate(H5P_GROUP_CREATE), H5Pclose, ctx.c_str());
  check(H5Pset_obj_track_times(gcpl.get(), false), ctx.c_str());
  if (track_order)
    check(H5Pset_link_creation_order(gcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED),
          ctx.c_str());
  return Id(H5Gcreate2(loc, name.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT), H5Gclose,
            ctx.c_str());
}

/// Untrusted files: only hard links are followed. An external link names another file (which
/// may be a FIFO that blocks open() forever, or a file the user never gave); a soft link may
/// point anywhere, including through an external link. Both are refused before traversal.
void require_hard_link(hid_t loc, const std::string& name) {
  H5L_info_t info;
  check(H5Lget_info(loc, name.c_str(), &info, H5P_DEFAULT), ("cannot look up '" + name + "'").c_str());
  if (info.type == H5L_TYPE_HARD) return;
  const char* kind = info.type == H5L_TYPE_EXTERNAL ? "an external link (to another file)"
                     : info.type == H5L_TYPE_SOFT   ? "a soft link"
                                                    : "a user-defined link";
  throw Failure("'" + name + "' is " + kind + "; muspec follows only hard links inside the file it reads");
}

Id open_group(hid_t loc, const std::string& name) {
  if (!link_exists(loc, name)) throw Failure("group '" + name + "' is missing");
  require_hard_link(loc, name);
  return Id(H5Gopen2(loc, name.c_str(), H5P_DEFAULT), H5Gclose,
            ("'" + name + "' is not a group").c_str());
}

Id open_dataset(hid_t loc, const std::string& name) {
  if (!link_exists(loc, name)) throw Failure("dataset '" + name + "' is missing");
  require_hard_link(loc, name);
  return Id(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), H5Dclose,
            ("'" + name + "' is not a dataset").c_str());
}

bool link_exists(hid_t loc, const std::string& name) {
  const htri_t r = H5Lexists(loc, name.c_str(), H5P_DEFAULT);
  if (r < 0) fail("cannot look up '" + name + "'");
  return r > 0;
}

uint64_t link_count(hid_t group) {
  H5G_info_t info;
  check(H5Gget_info(group, &info), "cannot query a group");
  return info.nlinks;
}

void write_dataset_f64(hid_t loc, const std::string& name, const std::vector<double>& v) {
  write_dataset(loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, v.data(), v.size());
}

void write_dataset_i64(hid_t loc, const std::string& name, const std::vector<int64_t>& v) {
  write_dataset(loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, v.data(), v.size());
}

void write_dataset_bool(hid_t loc, const std::string& name, const std::vector<bool>& v) {
  const std::string ctx = "cannot write dataset '" + name + "'";
  Id type(H5Tenum_create(H5T_NATIVE_INT8), H5Tclose, ctx.c_str());
  const int8_t no = 0, yes = 1;
  check(H5Tenum_insert(type.get(), "FALSE", &no), ctx.c_str());
  check(H5Tenum_insert(type.get(), "TRUE", &yes), ctx.c_str());
  std::vector<int8_t> bytes(v.begin(), v.end());
  write_dataset(loc, name, type.get(), type.get(), bytes.data(), bytes.size());
}

void write_dataset_strings(hid_t loc, const std::string& name,
                           const std::vector<std::string>& v) {
  std::vector<const char*> ptrs;
  ptrs.reserve(v.size());
  for (const std::string& s : v) {
    check_storable_string(s, "a value of dataset '" + name + "'");
    ptrs.push_back(s.c_str());
  }
  Id type = vlen_string_type(H5T_CSET_UTF8);
  write_dataset(loc, name, type.get(), type.get(), ptrs.data(), ptrs.size());
}

std::vector<double> read_dataset_f64(hid_t dset, uint64_t max_len) {
  Id type(H5Dget_type(dset), H5Tclose, "cannot read a dataset type");
  if (H5Tget_class(type.get()) != H5T_FLOAT) throw Failure("dataset is not floating-point");
  Id space(H5Dget_space(dset), H5Sclose, "cannot read a dataset shape");
  const Shape s = shape_of(space.get());
  if (s.cls != H5S_SIMPLE || s.rank != 1) throw Failure("dataset is not 1-D");
  if (s.count > max_len || s.count > kMaxReadDataset)
    throw Failure("dataset has " + std::to_string(s.count) + " values, more than the " +
                  std::to_string(max_len) + " expected");
  std::vector<double> v;
  if (s.count == 0) return v;
  // A crafted header can declare a huge extent with no data behind it; refuse to allocate for
  // values the file cannot contain (allowing for deflate's ~1000:1 best case).
  const uint64_t stored = H5Dget_storage_size(dset);
  if (stored == 0 || s.count * 8 / 1100 > stored)
    throw Failure("dataset declares " + std::to_string(s.count) + " values but stores " +
                  std::to_string(stored) + " bytes");
  v.resize(s.count);
  check(H5Dread(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()),
        "cannot read dataset values");
  return v;
}

std::vector<int64_t> read_dataset_i64(hid_t dset, uint64_t max_len) {
  Id type(H5Dget_type(dset), H5Tclose, "cannot read a dataset type");
  if (H5Tget_class(type.get()) != H5T_INTEGER) throw Failure("dataset is not integer");
  Id space(H5Dget_space(dset), H5Sclose, "cannot read a dataset shape");
  const Shape s = shape_of(space.get());
  if (s.cls != H5S_SIMPLE || s.rank != 1) throw Failure("dataset is not 1-D");
  if (s.count > max_len || s.count > kMaxReadDataset)
    throw Failure("dataset has " + std::to_string(s.count) + " values, more than the " + std::to_string(max_len) + " expected");
  std::vector<int64_t> v;
  if (s.count == 0) return v;
  const uint64_t stored = H5Dget_storage_size(dset);  // as in read_dataset_f64
  if (stored == 0 || s.count * 8 / 1100 > stored)
    throw Failure("dataset declares " + std::to_string(s.count) + " values but stores " + std::to_string(stored) + " bytes");
  v.resize(s.count);
  check(H5Dread(dset, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), "cannot read dataset values");
  return v;
}

void write_attr_string(hid_t obj, const std::string& name, const std::string& value) {
  const std::string ctx = "attribute '" + name + "'";
  if (value.size() > kMaxStringAttributeBytes)
    throw Failure(ctx + " would be " + std::to_string(value.size()) +
                  " bytes long, over the 64 KiB limit for string attributes");
  check_storable_string(value, ctx);
  const std::string err = "cannot write " + ctx;
  Id type = vlen_string_type(H5T_CSET_UTF8);
  Id space(H5Screate(H5S_SCALAR), H5Sclose, err.c_str());
  Id attr(H5Acreate2(obj, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
          H5Aclose, err.c_str());
  const char* p = value.c_str();
  check(H5Awrite(attr.get(), type.get(), &p), err.c_str());
  attr.close(err.c_str());
}

void write_attr_i64(hid_t obj, const std::string& name, int64_t value) {
  write_attr_scalar(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, value);
}

void write_attr_f64(hid_t obj, const std::string& name, double value) {
  write_attr_scalar(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, value);
}

void write_attr_i64_array(hid_t obj, const std::string& name, const std::vector<int64_t>& v) {
  write_attr_array(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, v);
}

void write_attr_f64_array(hid_t obj, const std::string& name, const std::vector<double>& v) {
  write_attr_array(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, v);
}

bool has_attr(hid_t obj, const std::string& name) {
  const htri_t r = H5Aexists(obj, name.c_str());
  if (r < 0) fail("cannot look up attribute '" + name + "'");
  return r > 0;
}

std::vector<std::string> attr_names(hid_t obj) {
  std::vector<std::string> names;
  auto collect = [](hid_t, const char* name, const H5A_info_t*, void* data) -> herr_t {
    static_cast<std::vector<std::string>*>(data)->emplace_back(name);
    return 0;
  };
  check(H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect, &names),
        "cannot list attributes");
  return names;
}

std::string read_attr_string(hid_t obj, const std::string& name) {
  OpenedAttr a = open_attr_checked(obj, name, H5T_STRING, "a string");
  require_single(a, name);
  const std::string err = "cannot read attribute '" + name + "'";
  const htri_t is_vlen = H5Tis_variable_str(a.type.get());
  if (is_vlen < 0) fail(err);
  if (is_vlen > 0) {
    const H5T_cset_t cset = H5Tget_cset(a.type.get());
    if (cset < 0) fail(err);
    Id mem = vlen_string_type(cset);
    char* p = nullptr;
    check(H5Aread(a.attr.get(), mem.get(), &p), err.c_str());
    std::string value = p ? std::string(p) : std::string();
    check(H5Dvlen_reclaim(mem.get(), a.space.get(), H5P_DEFAULT, &p), err.c_str());
    return value;
  }
  const size_t size = H5Tget_size(a.type.get());
  if (size == 0 || size > kMaxFixedString) throw Failure("attribute '" + name + "' has a bad string size");
  std::string buf(size, '\0');
  check(H5Aread(a.attr.get(), a.type.get(), buf.data()), err.c_str());
  if (H5Tget_strpad(a.type.get()) == H5T_STR_SPACEPAD) {
    buf.erase(buf.find_last_not_of(' ') + 1);
  } else {
    buf.resize(buf.find('\0') == std::string::npos ? buf.size() : buf.find('\0'));
  }
  return buf;
}

int64_t read_attr_i64(hid_t obj, const std::string& name) {
  OpenedAttr a = open_attr_checked(obj, name, H5T_INTEGER, "an integer");
  require_single(a, name);
  int64_t v = 0;
  check(H5Aread(a.attr.get(), H5T_NATIVE_INT64, &v), ("cannot read attribute '" + name + "'").c_str());
  return v;
}

double read_attr_f64(hid_t obj, const std::string& name) {
  OpenedAttr a = open_attr_checked(obj, name, H5T_FLOAT, "floating-point");
  require_single(a, name);
  double v = 0;
  check(H5Aread(a.attr.get(), H5T_NATIVE_DOUBLE, &v), ("cannot read attribute '" + name + "'").c_str());
  return v;
}

std::vector<int64_t> read_attr_i64_array(hid_t obj, const std::string& name) {
  return read_attr_array<int64_t>(obj, name, H5T_INTEGER, "an integer array", H5T_NATIVE_INT64);
}

std::vector<double> read_attr_f64_array(hid_t obj, const std::string& name) {
  return read_attr_array<double>(obj, name, H5T_FLOAT, "a floating-point array", H5T_NATIVE_DOUBLE);
}

bool is_valid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned c = p[i];
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

}  // namespace muspec::h5
