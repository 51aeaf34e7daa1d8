// Internal: a thin, checked layer over the HDF5 1.10 C API for the spectra store.
//
// * h5::init() turns off HDF5's automatic error printing once per process.
// * h5::Id owns one hid_t and closes it (file, group, dataset, dataspace, datatype, attribute,
//   property list); nothing in the store handles a raw id it does not own through an Id.
// * Every call that can fail is checked; a failure throws h5::Failure whose text says what
//   was attempted and, when HDF5 recorded one, the innermost HDF5 error message. The store
//   turns Failure into muspec::Error (writer) or muspec::InputError (reader), adding the file.
// * Readers treat the file as untrusted: type class, rank and lengths are checked before any
//   buffer is sized, and array lengths are capped.
//
// Not a public header: only lib/store/*.cpp include it (HDF5 is a private dependency).
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace muspec::h5 {

/// A failed HDF5 operation or a malformed object; what() is a reason without file context.
class Failure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Once per process: H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr).
void init();

/// Throws Failure(what + the innermost message of HDF5's error stack, if any).
[[noreturn]] void fail(const std::string& what);

/// Owns one hid_t; closes it with the matching H5?close on destruction.
class Id {
 public:
  using Closer = herr_t (*)(hid_t);
  Id() = default;
  /// Takes `id` (throws Failure(what) when it is negative, i.e. the call that made it failed).
  Id(hid_t id, Closer closer, const char* what);
  ~Id() { reset(); }
  Id(Id&& o) noexcept : id_(o.id_), closer_(o.closer_) { o.id_ = H5I_INVALID_HID; }
  Id& operator=(Id&& o) noexcept;
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;

  hid_t get() const { return id_; }
  /// Closes now and reports failure (use for files: closing flushes).
  void close(const char* what);
  void reset() noexcept;

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

void check(herr_t status, const char* what);
/// A dataset-transfer property list whose type-conversion buffers fit `count` elements (1 KiB
/// to libhdf5's default 1 MiB). libhdf5 1.10 zero-fills both buffers at their full size on
/// every converting read or write (variable-length strings, bool enums): with the default, each
/// small column cost ~2 MiB of memset and page faults, most of a small scan's write time.
Id transfer_for(uint64_t count);

// ---- files, groups, datasets ----
Id create_file(const std::string& path);     ///< fails if the path exists
Id open_file_readonly(const std::string& path);
/// `track_order`: links remember creation order, so h5py iterates them in that order.
Id create_group(hid_t loc, const std::string& name, bool track_order);
Id open_group(hid_t loc, const std::string& name);
Id open_dataset(hid_t loc, const std::string& name);
bool link_exists(hid_t loc, const std::string& name);  ///< one path level only
uint64_t link_count(hid_t group);

void write_dataset_f64(hid_t loc, const std::string& name, const std::vector<double>& v);
void write_dataset_i64(hid_t loc, const std::string& name, const std::vector<int64_t>& v);
/// h5py's boolean convention: an int8 enum {FALSE = 0, TRUE = 1} (numpy bool in h5py/pandas).
void write_dataset_bool(hid_t loc, const std::string& name, const std::vector<bool>& v);
/// Variable-length UTF-8 strings.
void write_dataset_strings(hid_t loc, const std::string& name, const std::vector<std::string>& v);
/// A 1-D floating-point dataset of at most `max_len` values, converted to double.
std::vector<double> read_dataset_f64(hid_t dset, uint64_t max_len);
/// A 1-D integer dataset of at most `max_len` values, converted to int64.
std::vector<int64_t> read_dataset_i64(hid_t dset, uint64_t max_len);

// ---- attributes ----
/// Largest attribute payload the writer creates: an attribute message must stay under 64 KiB
/// in HDF5's default (compact, 1.8-compatible) attribute storage.
inline constexpr size_t kMaxArrayAttributeBytes = 64000;
inline constexpr size_t kMaxStringAttributeBytes = 64 * 1024;

/// Scalar variable-length UTF-8 string. Rejects NUL bytes, invalid UTF-8 and values over
/// kMaxStringAttributeBytes.
void write_attr_string(hid_t obj, const std::string& name, const std::string& value);
void write_attr_i64(hid_t obj, const std::string& name, int64_t value);
void write_attr_f64(hid_t obj, const std::string& name, double value);
void write_attr_i64_array(hid_t obj, const std::string& name, const std::vector<int64_t>& v);
void write_attr_f64_array(hid_t obj, const std::string& name, const std::vector<double>& v);

bool has_attr(hid_t obj, const std::string& name);
std::vector<std::string> attr_names(hid_t obj);
/// Readers throw Failure("attribute 'x': ...") when the attribute is missing, has the wrong
/// type class (string / integer / float) or shape (one value / a 1-D array).
/// Strings may be variable- or fixed-length.
std::string read_attr_string(hid_t obj, const std::string& name);
int64_t read_attr_i64(hid_t obj, const std::string& name);
double read_attr_f64(hid_t obj, const std::string& name);
std::vector<int64_t> read_attr_i64_array(hid_t obj, const std::string& name);
std::vector<double> read_attr_f64_array(hid_t obj, const std::string& name);

bool is_valid_utf8(const std::string& s);

}  // namespace muspec::h5
