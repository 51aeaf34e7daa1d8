#include "store/summary_columns.h"

#include "core/error.h"
#include "store/h5.h"

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

}  // namespace

std::map<std::string, std::vector<double>> read_summary_columns(const std::string& path,
                                                               const std::vector<std::string>& names,
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

}  // namespace muspec
