// Internal to spectra/cuda/: what the device decoder does to each stored element, and which
// stored layouts it accepts, written once for the host and the device. decode.cu runs these
// functions in its kernel; tests/test_spectra_decode.cpp runs the same functions on the host
// against the host decoder (core/tensor.cpp) for every bf16 and f16 bit pattern and every
// layout, so the device's decoding is checked in CI, which has no GPU.
//
// No CUDA header here: under nvcc the functions are __host__ __device__, under a plain C++
// compiler they are ordinary inline functions.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>

#include "core/tensor.h"

#if defined(__CUDACC__)
#define MUSPEC_HOST_DEVICE __host__ __device__
#else
#define MUSPEC_HOST_DEVICE
#endif

namespace muspec::cuda {

/// The stored element types the device decodes (little-endian only; the host handles the rest).
enum class StoredType : uint8_t { F64, F32, F16, BF16 };

/// A matrix whose bytes are one contiguous block the device can decode element by element.
struct StoredLayout {
  StoredType type = StoredType::F32;
  int64_t rows = 0, cols = 0;  ///< of the row-major matrix the block holds (the transpose of
                               ///< the view for column-major storage: same singular values)
  int element_bytes = 4;
  size_t bytes() const { return static_cast<size_t>(rows) * static_cast<size_t>(cols) * static_cast<size_t>(element_bytes); }
};

/// Stored 16-bit codes, typed so that the kernel's template picks the right widening.
struct F16Bits { uint16_t bits; };
struct BF16Bits { uint16_t bits; };

MUSPEC_HOST_DEVICE inline float float_from_bits(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

/// IEEE binary16 → float32 bits, exactly (every f16 value is a float32 value): subnormals are
/// renormalized, Inf stays Inf and a NaN stays a NaN (its payload moved up).
MUSPEC_HOST_DEVICE inline uint32_t f16_to_f32_bits(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1fu) return sign | 0x7f800000u | (mantissa << 13);
  if (exponent != 0) return sign | ((exponent + 112u) << 23) | (mantissa << 13);  // 112 = 127 - 15
  if (mantissa == 0) return sign;
  uint32_t shifts = 0;  // subnormal: mantissa · 2⁻²⁴; shift until the implicit bit is set
  while ((mantissa & 0x400u) == 0) {
    mantissa <<= 1;
    ++shifts;
  }
  return sign | ((113u - shifts) << 23) | ((mantissa & 0x3ffu) << 13);
}

MUSPEC_HOST_DEVICE inline double widen(double x) { return x; }
MUSPEC_HOST_DEVICE inline double widen(float x) { return x; }
MUSPEC_HOST_DEVICE inline double widen(F16Bits x) { return float_from_bits(f16_to_f32_bits(x.bits)); }
/// bfloat16 is the top half of a float32.
MUSPEC_HOST_DEVICE inline double widen(BF16Bits x) { return float_from_bits(static_cast<uint32_t>(x.bits) << 16); }

/// Per-thread sums of the decoder: squares of the finite entries, count of NaN/Inf entries.
struct DecodeSums {
  double sum_squares = 0.0;
  unsigned long long nonfinite = 0;
};

/// One element as the scan analyses it: widened, NaN/Inf counted and passed through, the sign
/// transform applied to finite values, and its square added (the host decoder's rules).
MUSPEC_HOST_DEVICE inline bool is_finite(double x) {
#if defined(__CUDA_ARCH__)
  return isfinite(x);
#else
  return std::isfinite(x);
#endif
}

MUSPEC_HOST_DEVICE inline double decode_element(double x, bool sign, DecodeSums& sums) {
  if (!is_finite(x)) {
    ++sums.nonfinite;
    return x;
  }
  if (sign) x = static_cast<double>((x > 0) - (x < 0));
  sums.sum_squares += x * x;
  return x;
}

/// The stored type the device decodes, or nothing (integers, fp8).
inline std::optional<StoredType> stored_type(DType t) {
  switch (t) {
    case DType::F64: return StoredType::F64;
    case DType::F32: return StoredType::F32;
    case DType::F16: return StoredType::F16;
    case DType::BF16: return StoredType::BF16;
    default: return std::nullopt;
  }
}

/// The device layout of `m`, or nothing when its dtype, byte order or strides need the host
/// decoder (fp8, big-endian, non-contiguous slices).
inline std::optional<StoredLayout> device_layout(const MatrixView& m) {
  const auto type = stored_type(m.dtype);
  if (!type || m.byte_order != ByteOrder::Little || m.rows <= 0 || m.cols <= 0) return std::nullopt;
  StoredLayout l;
  l.type = *type;
  l.element_bytes = static_cast<int>(dtype_bits(m.dtype) / 8);
  // Row-major (safetensors, C-order .npy, a slice of a stack); a single row or column is
  // contiguous whatever its other stride says.
  if ((m.col_stride == 1 || m.cols == 1) && (m.row_stride == m.cols || m.rows == 1)) {
    l.rows = m.rows, l.cols = m.cols;
    return l;
  }
  if (m.row_stride == 1 && m.col_stride == m.rows) {  // column-major (Fortran-order .npy): xᵀ row-major
    l.rows = m.cols, l.cols = m.rows;
    return l;
  }
  return std::nullopt;
}

}  // namespace muspec::cuda
