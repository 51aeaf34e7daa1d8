#include "store/summary_columns.h"

#include <sys/stat.h>

#include <algorithm>

#include "core/byte_codec.h"
#include "core/error.h"
#include "store/h5.h"
#include "store/isolated_read.h"

namespace muspec {

namespace {

using h5::Id;

/// The column's values, or empty when it is not a 1-D numeric dataset of `rows` values.
std::vector<double> read_numeric_column(hid_t group, const std::string& name, size_t rows) {
  Id dset = h5::open_dataset(group, name);
  Id type(H5Dget_type(dset.get()), H5Tclose, "cannot read a dataset type");
  const H5T_class_t cls = H5Tget_class(type.get());
  if (cls != H5T_FLOAT && cls != H5T_INTEGER) return {};
  Id space(H5Dget_space(dset.get()), H5Sclose, "cannot read a dataset shape");
  if (H5Sget_simple_extent_ndims(space.get()) != 1) return {};
  hsize_t count = 0;
  if (H5Sget_simple_extent_dims(space.get(), &count, nullptr) != 1 || count != rows || rows == 0) return {};
  // A crafted header can declare values the file does not store: check before allocating.
  if (H5Dget_storage_size(dset.get()) == 0) return {};
  std::vector<double> v(rows);
  h5::check(H5Dread(dset.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()),
            "cannot read dataset values");
  return v;
}

std::map<std::string, std::vector<double>> read_in_process(const std::string& path, const std::vector<std::string>& names,
                                                           size_t rows) {
  h5::init();
  std::map<std::string, std::vector<double>> out;
  try {
    Id file = h5::open_file_readonly(path);
    if (!h5::link_exists(file.get(), "summary")) return out;
    Id group = h5::open_group(file.get(), "summary");
    for (const std::string& name : names) {
      if (name.empty() || name.find('/') != std::string::npos || !h5::link_exists(group.get(), name)) continue;
      try {
        std::vector<double> v = read_numeric_column(group.get(), name, rows);
        if (!v.empty()) out[name] = std::move(v);
      } catch (const h5::Failure&) {
        // an unreadable optional column is left out, as documented
      }
    }
  } catch (const h5::Failure& e) {
    throw InputError(path, "", e.what());
  }
  return out;
}

/// The columns as one message (u32 count, then name and values each), and back: the receiver
/// checks the names against those asked for and the lengths against `rows`.
std::string encode_columns(const std::map<std::string, std::vector<double>>& columns) {
  ByteWriter w;
  w.u32(static_cast<uint32_t>(columns.size()));
  for (const auto& [name, values] : columns) w.str(name), w.f64s(values);
  return w.bytes();
}

void decode_columns(const std::string& message, const std::string& path, const std::vector<std::string>& names, size_t rows,
                    std::map<std::string, std::vector<double>>& out) {
  ByteReader r(message.data(), message.size());
  try {
    for (uint32_t n = r.count(8, "a column"), i = 0; i < n; ++i) {
      std::string name = r.str();
      std::vector<double> values = r.f64s();
      if (std::find(names.begin(), names.end(), name) == names.end() || values.size() != rows || out.count(name))
        throw ByteCodecError{"a column that was not asked for"};
      out[name] = std::move(values);
    }
    if (r.left() != 0) throw ByteCodecError{"bytes past the columns"};
  } catch (const ByteCodecError& e) {
    throw child_sent_damaged(path, e.what);
  }
}

}  // namespace

std::map<std::string, std::vector<double>> read_summary_columns(const std::string& path,
                                                               const std::vector<std::string>& names,
                                                               size_t rows) {
  struct stat st {};
  const int64_t size = ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
  std::map<std::string, std::vector<double>> out;
  // As read_spectra_h5: libhdf5 runs on the file in a child only (store/isolated_read.h).
  const bool read_there = read_in_child(
      path, [&](ChildChannel& channel) { channel.send(encode_columns(read_in_process(path, names, rows))); },
      [&](std::string&& message) { decode_columns(message, path, names, rows, out); }, isolated_read_timeout_s(size));
  return read_there ? out : read_in_process(path, names, rows);
}

}  // namespace muspec
