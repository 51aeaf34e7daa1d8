#include "core/tensor.h"

#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/error.h"

namespace muspec {

int64_t TensorView::numel() const {
  for (int64_t d : shape)
    if (d == 0) return 0;
  int64_t n = 1;
  for (int64_t d : shape)
    if (__builtin_mul_overflow(n, d, &n)) return INT64_MAX;  // saturate: bounds_problem() rejects such views
  return n;
}

std::vector<int64_t> TensorView::contiguous_strides(const std::vector<int64_t>& shape) {
  // Saturates instead of overflowing: only an empty tensor (never dereferenced) or one that
  // bounds_problem() rejects can have such extents.
  std::vector<int64_t> strides(shape.size(), 1);
  for (int i = static_cast<int>(shape.size()) - 2; i >= 0; --i) {
    int64_t s;
    if (__builtin_mul_overflow(strides[i + 1], shape[i + 1] > 0 ? shape[i + 1] : 1, &s)) s = INT64_MAX;
    strides[i] = s;
  }
  return strides;
}

std::string TensorView::bounds_problem() const {
  if (strides.size() != shape.size()) return "shape and stride ranks differ";
  const int bits = dtype_bits(dtype);
  if (bits % 8 != 0) return "packed sub-byte dtype " + std::string(dtype_name(dtype)) + " is not supported";
  uint64_t count = 1;
  uint64_t max_index = 0;  // largest element offset reachable, in elements
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) return "negative dimension " + std::to_string(shape[i]);
    if (strides[i] < 0) return "negative stride " + std::to_string(strides[i]);
    if (!checked_mul(count, static_cast<uint64_t>(shape[i]), &count))
      return "element count overflows";
  }
  if (count == 0) return "";
  for (size_t i = 0; i < shape.size(); ++i) {
    uint64_t reach;
    if (!checked_mul(static_cast<uint64_t>(shape[i] - 1), static_cast<uint64_t>(strides[i]), &reach) ||
        !checked_add(max_index, reach, &max_index))
      return "stride arithmetic overflows";
  }
  uint64_t end_bytes;
  if (!checked_add(max_index, 1, &end_bytes) || !checked_mul(end_bytes, bits / 8, &end_bytes))
    return "byte extent overflows";
  if (data == nullptr) return "no data";
  if (end_bytes > reachable_bytes)
    return "needs " + std::to_string(end_bytes) + " bytes but only " +
           std::to_string(reachable_bytes) + " are available";
  return "";
}

uint64_t TensorView::extent_bytes() const {
  if (numel() == 0) return 0;
  uint64_t last = 0;
  for (size_t i = 0; i < shape.size(); ++i) last += static_cast<uint64_t>(shape[i] - 1) * static_cast<uint64_t>(strides[i]);
  return (last + 1) * static_cast<uint64_t>(dtype_bits(dtype) / 8);
}

int64_t matrix_count(const TensorView& t) {
  int64_t n = 1;
  for (int i = 0; i + 2 < t.rank(); ++i)
    if (__builtin_mul_overflow(n, t.shape[i], &n)) return INT64_MAX;
  return n;
}

MatrixView matrix_of(const TensorView& t, int64_t index) {
  if (t.rank() < 2) throw UsageError("a matrix needs a tensor of rank >= 2");
  if (index < 0 || index >= matrix_count(t))
    throw UsageError("matrix slice index " + std::to_string(index) + " out of range");
  int64_t offset = 0;  // in elements
  int64_t rest = index;
  for (int i = t.rank() - 3; i >= 0; --i) {
    offset += (rest % t.shape[i]) * t.strides[i];
    rest /= t.shape[i];
  }
  MatrixView m;
  m.dtype = t.dtype;
  m.byte_order = t.byte_order;
  m.rows = t.shape[t.rank() - 2];
  m.cols = t.shape[t.rank() - 1];
  m.row_stride = t.strides[t.rank() - 2];
  m.col_stride = t.strides[t.rank() - 1];
  m.base = t.data + offset * (dtype_bits(t.dtype) / 8);
  return m;
}

namespace {

template <typename U>
U load_raw(const uint8_t* p, ByteOrder order) {
  U v;
  std::memcpy(&v, p, sizeof v);  // unaligned-safe
  if (order == ByteOrder::Big) {
    if constexpr (sizeof(U) == 2) v = __builtin_bswap16(v);
    if constexpr (sizeof(U) == 4) v = __builtin_bswap32(v);
    if constexpr (sizeof(U) == 8) v = __builtin_bswap64(v);
  }
  return v;
}

double decode(DType t, ByteOrder order, const uint8_t* p) {
  switch (t) {
    case DType::F64: {
      const uint64_t u = load_raw<uint64_t>(p, order);
      double d;
      std::memcpy(&d, &u, sizeof d);
      return d;
    }
    case DType::F32: {
      const uint32_t u = load_raw<uint32_t>(p, order);
      float f;
      std::memcpy(&f, &u, sizeof f);
      return f;
    }
    case DType::F16: return f16_to_double(load_raw<uint16_t>(p, order));
    case DType::BF16: return bf16_to_double(load_raw<uint16_t>(p, order));
    case DType::F8_E4M3:
    case DType::F8_E5M2:
    case DType::F8_E4M3FNUZ:
    case DType::F8_E5M2FNUZ:
    case DType::F8_E8M0: return f8_to_double(t, *p);
    default: throw UsageError("dtype " + std::string(dtype_name(t)) + " is not a real floating type");
  }
}

inline double apply(InputTransform tr, double x) {
  if (tr == InputTransform::Sign) return static_cast<double>((x > 0) - (x < 0));
  return x;
}

template <typename Decode>
DenseConversion convert(const MatrixView& m, InputTransform tr, double* out, Decode dec) {
  DenseConversion r;
  const int64_t esize = dtype_bits(m.dtype) / 8;
  double sumsq = 0.0;
  for (int64_t i = 0; i < m.rows; ++i) {
    const uint8_t* row = m.base + i * m.row_stride * esize;
    double* dst = out + i * m.cols;
    for (int64_t j = 0; j < m.cols; ++j) {
      const double x = dec(row + j * m.col_stride * esize);
      if (!std::isfinite(x)) {
        ++r.nonfinite;
        dst[j] = x;
        continue;
      }
      const double y = apply(tr, x);
      dst[j] = y;
      sumsq += y * y;
    }
  }
  r.frobenius = std::sqrt(sumsq);
  return r;
}

}  // namespace

double element(const MatrixView& m, int64_t i, int64_t j) {
  const int64_t esize = dtype_bits(m.dtype) / 8;
  return decode(m.dtype, m.byte_order, m.base + (i * m.row_stride + j * m.col_stride) * esize);
}

DenseConversion to_dense_row_major(const MatrixView& m, InputTransform tr, double* out) {
  if (!dtype_is_decodable_float(m.dtype))
    throw UsageError("dtype " + std::string(dtype_name(m.dtype)) + " is not a real floating type");
  // Fast paths for the common little-endian types; the generic decoder handles the rest.
  if (m.byte_order == ByteOrder::Little && m.dtype == DType::F32)
    return convert(m, tr, out, [](const uint8_t* p) { float f; std::memcpy(&f, p, 4); return double(f); });
  if (m.byte_order == ByteOrder::Little && m.dtype == DType::BF16)
    return convert(m, tr, out, [](const uint8_t* p) {
      uint16_t b; std::memcpy(&b, p, 2); return bf16_to_double(b); });
  const DType t = m.dtype;
  const ByteOrder o = m.byte_order;
  return convert(m, tr, out, [t, o](const uint8_t* p) { return decode(t, o, p); });
}

}  // namespace muspec
