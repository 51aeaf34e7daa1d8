// NumPy .npy files (format versions 1.0, 2.0 and 3.0), checkpoint-formats.md §5.1.
//
// Layout: "\x93NUMPY", major u8, minor u8, header length (u16 LE in v1, u32 LE in v2/v3), the
// header (a Python dict literal with exactly the keys 'descr', 'fortran_order' and 'shape'),
// then the raw array bytes. The header is parsed by a small literal parser here (strings,
// integers, True/False/None, tuples, lists; nothing is ever evaluated or unpickled).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/tensor_source.h"

namespace muspec {

/// Largest header accepted, in bytes, for every version: numpy's own default
/// _MAX_HEADER_SIZE. Every dtype muspec decodes needs a header well under 2 KB even at
/// numpy's maximum rank; only large structured dtypes (unsupported anyway) need more.
constexpr uint64_t kNpyMaxHeaderBytes = 10000;

/// Bytes before the header text: magic (6) + version (2) + length (2 in v1, 4 in v2/v3).
constexpr uint64_t kNpyMaxPreambleBytes = 12;

/// A parsed .npy header.
struct NpyHeader {
  int major = 1, minor = 0;
  std::string descr;              ///< as written: "<f4", or the literal text of a structured list
  std::optional<DType> dtype;     ///< nullopt when muspec cannot read the elements
  std::string unsupported;        ///< why dtype is nullopt (object, structured, string, ...)
  ByteOrder byte_order = ByteOrder::Little;
  uint64_t item_size = 0;         ///< bytes per element; 0 when dtype is nullopt
  bool fortran_order = false;     ///< true: column-major data
  std::vector<int64_t> shape;     ///< () is a scalar with one element
  uint64_t data_offset = 0;       ///< offset of the first data byte from the start of the image
};

/// Parses the preamble and header of an .npy image of which `size` bytes are at `bytes` (the
/// whole file, or a prefix that contains the complete header). Throws InputError(file, tensor,
/// reason) for a bad magic, an unknown version, a header over kNpyMaxHeaderBytes or past
/// `size`, or a malformed dict.
NpyHeader parse_npy_header(const uint8_t* bytes, uint64_t size, const std::string& file,
                           const std::string& tensor);

/// numel(shape) × item_size, checked. Throws InputError when it overflows or when the dtype is
/// unsupported (with the reason).
uint64_t npy_data_bytes(const NpyHeader& h, const std::string& file, const std::string& tensor);

/// Checks that `data_size` (the bytes present after the header) is exactly npy_data_bytes(h):
/// throws InputError naming "truncated" or "trailing bytes" otherwise. No-op for unsupported
/// dtypes, whose load() fails anyway.
void check_npy_data_size(const NpyHeader& h, uint64_t data_size, const std::string& file,
                         const std::string& tensor);

/// The checked view of the array whose data (after the header) is `data_size` bytes at `data`.
/// Fortran-order arrays get column-major strides (no copy); big-endian descrs set
/// ByteOrder::Big. Throws InputError for unsupported dtypes or size mismatches.
TensorView npy_view(const NpyHeader& h, const uint8_t* data, uint64_t data_size,
                    const std::string& file, const std::string& tensor);

/// The TensorEntry describing the array; `nbytes` is `data_size`.
TensorEntry npy_entry(const NpyHeader& h, const std::string& name, const std::string& file,
                      uint64_t data_size);

/// Opens an .npy file: one entry named after the file stem ("w.npy" -> "w"), memory-mapped.
/// Supported dtypes are validated at open (data length must match the shape exactly);
/// unsupported ones are listed with dtype nullopt and fail at load().
std::unique_ptr<TensorSource> open_npy(const std::string& path);

/// True when `bytes` begin with the .npy magic "\x93NUMPY".
bool has_npy_magic(const uint8_t* bytes, uint64_t size);

}  // namespace muspec
