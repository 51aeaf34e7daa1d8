// The device decoder's rules (lib/spectra/cuda/decode_elements.h), run on the host: the CUDA
// kernel calls exactly these functions, so checking them here checks the GPU's decoding in CI,
// which has no GPU. Oracles: the compiler's own _Float16 conversion (where it has one) and the
// host decoder core/tensor.cpp for every bf16 and f16 bit pattern; to_dense_row_major() on the
// same view for every layout a checkpoint can have (which the device accepts, which it leaves
// to the host, and how an accepted block maps back to the matrix).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"
#include "spectra/cuda/decode_elements.h"

using namespace muspec;
using namespace muspec::cuda;

namespace {

bool same_value(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return a == b && std::signbit(a) == std::signbit(b);
}

/// Random stored bytes: every 16-bit code is possible (NaN, Inf, subnormals, -0); wider types
/// get normal values with some NaN/Inf/-0 entries.
std::string random_bytes(DType dtype, size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal;
  const size_t esize = dtype_bits(dtype) / 8;
  std::string bytes(count * esize, '\0');
  for (size_t i = 0; i < count; ++i) {
    double v = normal(rng);
    if (i % 17 == 3) v = std::numeric_limits<double>::quiet_NaN();
    if (i % 23 == 5) v = -std::numeric_limits<double>::infinity();
    if (i % 29 == 7) v = -0.0;
    if (dtype == DType::F64) std::memcpy(&bytes[8 * i], &v, 8);
    if (dtype == DType::F32) {
      const float f = static_cast<float>(v);
      std::memcpy(&bytes[4 * i], &f, 4);
    }
    if (esize == 2) {
      const auto code = static_cast<uint16_t>(rng());
      std::memcpy(&bytes[2 * i], &code, 2);
    }
  }
  return bytes;
}

template <class Stored>
double load_and_widen(const uint8_t* p) {
  Stored s;
  std::memcpy(&s, p, sizeof s);
  return widen(s);
}

/// What the device does with a layout: copy the block as the upload does, then decode every
/// element in order with decode_element (the kernel's per-thread sums added in one sum).
std::vector<double> decode_like_the_device(const MatrixView& m, const StoredLayout& l, bool sign,
                                           DenseConversion& conversion) {
  const std::string block(reinterpret_cast<const char*>(m.base), l.bytes());
  const auto* p = reinterpret_cast<const uint8_t*>(block.data());
  std::vector<double> out(static_cast<size_t>(l.rows * l.cols));
  DecodeSums sums;
  for (size_t i = 0; i < out.size(); ++i) {
    const uint8_t* e = p + i * static_cast<size_t>(l.element_bytes);
    double x = 0;
    switch (l.type) {
      case StoredType::F64: x = load_and_widen<double>(e); break;
      case StoredType::F32: x = load_and_widen<float>(e); break;
      case StoredType::F16: x = load_and_widen<F16Bits>(e); break;
      case StoredType::BF16: x = load_and_widen<BF16Bits>(e); break;
    }
    out[i] = decode_element(x, sign, sums);
  }
  conversion.nonfinite = static_cast<int64_t>(sums.nonfinite);
  conversion.frobenius = std::sqrt(sums.sum_squares);
  return out;
}

enum class Expect { RowMajor, Transposed, Host };

/// Checks device_layout's decision on `m` and, when it accepts, that the device's block decodes
/// to the host decoder's matrix (or its transpose) with the same NaN/Inf count and ‖X‖_F.
void check_view(const MatrixView& m, Expect expect) {
  const std::optional<StoredLayout> l = device_layout(m);
  REQUIRE(l.has_value() == (expect != Expect::Host));
  if (!l) return;
  const bool transposed = expect == Expect::Transposed;
  CHECK(l->rows == (transposed ? m.cols : m.rows));
  CHECK(l->cols == (transposed ? m.rows : m.cols));
  for (const InputTransform tr : {InputTransform::None, InputTransform::Sign}) {
    std::vector<double> host(static_cast<size_t>(m.rows * m.cols));
    const DenseConversion h = to_dense_row_major(m, tr, host.data());
    DenseConversion d;
    const std::vector<double> dev = decode_like_the_device(m, *l, tr == InputTransform::Sign, d);
    int64_t mismatches = 0;
    for (int64_t i = 0; i < m.rows; ++i)
      for (int64_t j = 0; j < m.cols; ++j) {
        const double got = transposed ? dev[static_cast<size_t>(j * m.rows + i)] : dev[static_cast<size_t>(i * m.cols + j)];
        if (!same_value(got, host[static_cast<size_t>(i * m.cols + j)])) ++mismatches;
      }
    CHECK(mismatches == 0);
    CHECK(d.nonfinite == h.nonfinite);
    CHECK(d.frobenius == Approx(h.frobenius).epsilon(1e-13));
  }
}

MatrixView view_of(const std::string& bytes, DType dtype, int64_t rows, int64_t cols, int64_t row_stride,
                   int64_t col_stride) {
  MatrixView v;
  v.dtype = dtype;
  v.rows = rows, v.cols = cols;
  v.row_stride = row_stride, v.col_stride = col_stride;
  v.base = reinterpret_cast<const uint8_t*>(bytes.data());
  return v;
}

}  // namespace

TEST_CASE("device f16 widening equals the host decoder for all 65536 codes", "[spectra][decode]") {
  int64_t mismatches = 0, compiler_mismatches = 0;
  for (uint32_t code = 0; code <= 0xffffu; ++code) {
    const auto c = static_cast<uint16_t>(code);
    const double got = widen(F16Bits{c});
    if (!same_value(got, f16_to_double(c))) ++mismatches;
#if defined(__FLT16_MANT_DIG__)
    _Float16 h;  // the compiler's own binary16, an oracle independent of both decoders
    std::memcpy(&h, &c, 2);
    if (!same_value(got, static_cast<double>(h))) ++compiler_mismatches;
#endif
  }
  CHECK(mismatches == 0);
  CHECK(compiler_mismatches == 0);
  // Fixed points of the format, from IEEE 754 binary16.
  CHECK(widen(F16Bits{0x0001}) == std::ldexp(1.0, -24));  // smallest subnormal
  CHECK(widen(F16Bits{0x03ff}) == std::ldexp(1023.0, -24));  // largest subnormal
  CHECK(widen(F16Bits{0x0400}) == std::ldexp(1.0, -14));  // smallest normal
  CHECK(widen(F16Bits{0x7bff}) == 65504.0);
  CHECK(widen(F16Bits{0xc000}) == -2.0);
  CHECK(std::isinf(widen(F16Bits{0xfc00})));
  CHECK(std::isnan(widen(F16Bits{0x7e00})));
  CHECK(std::isnan(widen(F16Bits{0x7c01})));  // a signalling NaN stays a NaN, not Inf
}

TEST_CASE("device bf16 widening equals the host decoder for all 65536 codes", "[spectra][decode]") {
  int64_t mismatches = 0;
  for (uint32_t code = 0; code <= 0xffffu; ++code)
    if (!same_value(widen(BF16Bits{static_cast<uint16_t>(code)}), bf16_to_double(static_cast<uint16_t>(code))))
      ++mismatches;
  CHECK(mismatches == 0);
  CHECK(widen(BF16Bits{0x3f80}) == 1.0);
  CHECK(widen(BF16Bits{0xc0a0}) == -5.0);
  CHECK(widen(BF16Bits{0x0001}) == std::ldexp(1.0, -133));  // smallest subnormal
  CHECK(std::isnan(widen(BF16Bits{0x7f81})));
}

TEST_CASE("device decode_element: NaN/Inf counted and passed on, sign transform, squares", "[spectra][decode]") {
  DecodeSums sums;
  CHECK(decode_element(-3.0, false, sums) == -3.0);
  CHECK(decode_element(0.5, true, sums) == 1.0);
  CHECK(decode_element(-0.25, true, sums) == -1.0);
  CHECK(decode_element(0.0, true, sums) == 0.0);
  CHECK(std::isinf(decode_element(std::numeric_limits<double>::infinity(), true, sums)));
  CHECK(std::isnan(decode_element(std::numeric_limits<double>::quiet_NaN(), false, sums)));
  CHECK(sums.nonfinite == 2);
  CHECK(sums.sum_squares == 9.0 + 1.0 + 1.0);
}

TEST_CASE("device layouts: what the GPU decodes, what it leaves to the host, and how", "[spectra][decode]") {
  const int64_t m = 37, n = 53;
  {
    const DType dtype = GENERATE(DType::F64, DType::F32, DType::F16, DType::BF16);
    CAPTURE(dtype_name(dtype));
    const int64_t esize = dtype_bits(dtype) / 8;
    const std::string bytes = random_bytes(dtype, static_cast<size_t>(3 * m * n + 8), 11 + static_cast<uint32_t>(dtype));
    SECTION("row-major (safetensors, C-order .npy)") { check_view(view_of(bytes, dtype, m, n, n, 1), Expect::RowMajor); }
    SECTION("column-major (Fortran-order .npy) is decoded as the transpose") {
      check_view(view_of(bytes, dtype, m, n, 1, m), Expect::Transposed);
    }
    SECTION("slice 1 of a [3, m, n] stack") {
      TensorView t;
      t.dtype = dtype;
      t.shape = {3, m, n};
      t.strides = TensorView::contiguous_strides(t.shape);
      t.data = reinterpret_cast<const uint8_t*>(bytes.data());
      t.reachable_bytes = bytes.size();
      REQUIRE(t.bounds_problem().empty());
      const MatrixView v = matrix_of(t, 1);
      REQUIRE(v.base == t.data + m * n * esize);
      check_view(v, Expect::RowMajor);
    }
    SECTION("data at an odd address") {
      MatrixView v = view_of(bytes, dtype, m, n - 1, n - 1, 1);
      v.base += 3;  // not a multiple of any element size: the element grid shifts by 3 bytes
      check_view(v, Expect::RowMajor);
    }
    SECTION("one row or one column is contiguous whatever its other stride") {
      check_view(view_of(bytes, dtype, 1, n, 999, 1), Expect::RowMajor);
      check_view(view_of(bytes, dtype, m, 1, 1, 999), Expect::RowMajor);
    }
    SECTION("non-contiguous views go to the host decoder") {
      check_view(view_of(bytes, dtype, m, n / 2, n, 2), Expect::Host);         // every other column
      check_view(view_of(bytes, dtype, m, n - 3, n, 1), Expect::Host);         // padded rows
      check_view(view_of(bytes, dtype, m, n / 2, 1, m + 3), Expect::Host);     // padded columns
      check_view(view_of(bytes, dtype, 1, n / 2, n, 2), Expect::Host);         // strided single row
      MatrixView big = view_of(bytes, dtype, m, n, n, 1);
      big.byte_order = ByteOrder::Big;
      check_view(big, Expect::Host);
    }
  }
  SECTION("fp8 goes to the host decoder") {
    const std::string bytes(static_cast<size_t>(m * n), '\x38');
    check_view(view_of(bytes, DType::F8_E4M3, m, n, n, 1), Expect::Host);
  }
}
