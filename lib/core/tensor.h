// Non-owning views of tensors stored in checkpoint files, and their conversion to float64.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace muspec {

enum class ByteOrder : uint8_t { Little, Big };

/// A strided, read-only view of a tensor's bytes.
///
/// `strides` are in elements (not bytes), one per dimension, row-major by default.
/// `data` points at element 0 (the storage offset is already applied) and `reachable_bytes`
/// is how many bytes from `data` onward the view may touch; `check_bounds()` proves that
/// every element lies inside that span. Readers must call it before handing a view out.
struct TensorView {
  DType dtype = DType::F32;
  ByteOrder byte_order = ByteOrder::Little;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;
  const uint8_t* data = nullptr;
  uint64_t reachable_bytes = 0;

  int rank() const { return static_cast<int>(shape.size()); }
  /// Number of elements; 0 if any dimension is 0. Assumes check_bounds() passed.
  int64_t numel() const;
  /// Row-major strides for `shape`.
  static std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& shape);
  /// Empty string when the view is valid; otherwise what is wrong (negative dimension,
  /// element count overflow, element outside the reachable bytes, packed sub-byte dtype).
  std::string bounds_problem() const;
  /// Bytes from `data` to one past the last element (0 for an empty tensor). Call only after
  /// bounds_problem() returned empty.
  uint64_t extent_bytes() const;
};

/// A view plus whatever keeps its bytes alive (a memory map, an inflated buffer).
struct TensorHandle {
  TensorView view;
  std::shared_ptr<const void> keepalive;
};

/// A 2-D strided view: a 2-D tensor, or one slice of a higher-rank tensor along its leading
/// dimensions (e.g. one expert of a [E, out, in] stack).
struct MatrixView {
  DType dtype = DType::F32;
  ByteOrder byte_order = ByteOrder::Little;
  int64_t rows = 0, cols = 0;
  int64_t row_stride = 0, col_stride = 0;  ///< in elements
  const uint8_t* base = nullptr;
};

/// The matrix view of a 2-D tensor, or of slice `index` (row-major flat index over the leading
/// rank-2 dimensions) of a tensor of rank >= 3. Throws UsageError when the rank is < 2 or the
/// index is out of range.
MatrixView matrix_of(const TensorView& t, int64_t index = 0);

/// Number of 2-D slices (product of leading dimensions; 1 for a matrix).
int64_t matrix_count(const TensorView& t);

/// Element (i, j) as float64.
double element(const MatrixView& m, int64_t i, int64_t j);

/// Result of converting a matrix to dense float64.
struct DenseConversion {
  int64_t nonfinite = 0;      ///< count of NaN / Inf entries
  double frobenius = 0.0;     ///< ||X||_F of the finite entries, accumulated in float64
};

/// Element-wise transform applied to a matrix before analysis.
enum class InputTransform : uint8_t {
  None,  ///< the buffer as stored
  Sign,  ///< element-wise sign (-1, 0, +1), as AdaMuon feeds NS
};

/// Writes `m` to `out` (rows*cols doubles, row-major), applying `transform`.
DenseConversion to_dense_row_major(const MatrixView& m, InputTransform transform, double* out);

}  // namespace muspec
