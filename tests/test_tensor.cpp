// Tensor views: bounds checks on untrusted shapes/strides, slicing, conversion, transforms.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"

using namespace muspec;

namespace {
TensorView f32_view(const std::vector<float>& data, std::vector<int64_t> shape) {
  TensorView v;
  v.dtype = DType::F32;
  v.shape = std::move(shape);
  v.strides = TensorView::contiguous_strides(v.shape);
  v.data = reinterpret_cast<const uint8_t*>(data.data());
  v.reachable_bytes = data.size() * 4;
  return v;
}
}  // namespace

TEST_CASE("bounds_problem accepts exact fits and rejects every overreach", "[tensor]") {
  std::vector<float> buf(12);
  TensorView v = f32_view(buf, {3, 4});
  CHECK(v.bounds_problem().empty());
  v.reachable_bytes = 47;
  CHECK_THAT(v.bounds_problem(), Catch::Contains("needs 48 bytes"));
  v = f32_view(buf, {4, 4});
  CHECK_FALSE(v.bounds_problem().empty());
  v = f32_view(buf, {3, -4});
  CHECK_THAT(v.bounds_problem(), Catch::Contains("negative dimension"));
  v = f32_view(buf, {int64_t{1} << 32, int64_t{1} << 32});
  CHECK_THAT(v.bounds_problem(), Catch::Contains("overflow"));
  v = f32_view(buf, {3, 4});
  v.strides = {1, std::numeric_limits<int64_t>::max() / 2};
  CHECK_FALSE(v.bounds_problem().empty());
  v = f32_view(buf, {0, 4});
  CHECK(v.bounds_problem().empty());  // empty tensors touch nothing
  // A transposed view of the same storage fits exactly.
  v = f32_view(buf, {4, 3});
  v.strides = {1, 4};
  CHECK(v.bounds_problem().empty());
  v.dtype = DType::F4;
  CHECK_THAT(v.bounds_problem(), Catch::Contains("sub-byte"));
}

TEST_CASE("matrix_of slices stacks along the leading dimensions", "[tensor]") {
  std::vector<float> buf(2 * 3 * 4 * 5);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<float>(i);
  TensorView v = f32_view(buf, {2, 3, 4, 5});
  REQUIRE(matrix_count(v) == 6);
  for (int64_t a = 0; a < 2; ++a)
    for (int64_t b = 0; b < 3; ++b) {
      const MatrixView m = matrix_of(v, a * 3 + b);
      REQUIRE(m.rows == 4);
      REQUIRE(m.cols == 5);
      for (int64_t i = 0; i < 4; ++i)
        for (int64_t j = 0; j < 5; ++j) REQUIRE(element(m, i, j) == ((a * 3 + b) * 4 + i) * 5 + j);
    }
  CHECK_THROWS_AS(matrix_of(v, 6), UsageError);
  TensorView vec = f32_view(buf, {120});
  CHECK_THROWS_AS(matrix_of(vec), UsageError);
}

TEST_CASE("conversion honours strides, byte order, non-finite counts and the sign transform", "[tensor]") {
  std::vector<float> buf = {1.f, -2.f, 0.f, 4.f, std::nanf(""), 6.f};
  TensorView v = f32_view(buf, {3, 2});
  v.shape = {2, 3};  // transpose view: element (i, j) = buf[j * 2 + i]
  v.strides = {1, 2};
  std::vector<double> out(6);
  DenseConversion c = to_dense_row_major(matrix_of(v), InputTransform::None, out.data());
  CHECK(out[0] == 1.0);
  CHECK(out[1] == 0.0);
  CHECK(std::isnan(out[2]));
  CHECK(out[3] == -2.0);
  CHECK(c.nonfinite == 1);
  CHECK(c.frobenius == Approx(std::sqrt(1.0 + 4 + 16 + 36)));
  c = to_dense_row_major(matrix_of(v), InputTransform::Sign, out.data());
  CHECK(out[0] == 1.0);
  CHECK(out[1] == 0.0);
  CHECK(out[3] == -1.0);
  CHECK(c.frobenius == Approx(std::sqrt(4.0)));

  // Big-endian float64.
  const double vals[] = {1.5, -0.25};
  std::vector<uint8_t> be(16);
  for (int k = 0; k < 2; ++k) {
    uint64_t u;
    std::memcpy(&u, &vals[k], 8);
    u = __builtin_bswap64(u);
    std::memcpy(be.data() + 8 * k, &u, 8);
  }
  TensorView b;
  b.dtype = DType::F64;
  b.byte_order = ByteOrder::Big;
  b.shape = {1, 2};
  b.strides = {2, 1};
  b.data = be.data();
  b.reachable_bytes = 16;
  REQUIRE(b.bounds_problem().empty());
  to_dense_row_major(matrix_of(b), InputTransform::None, out.data());
  CHECK(out[0] == 1.5);
  CHECK(out[1] == -0.25);
}

TEST_CASE("contiguous strides of huge or empty shapes saturate instead of overflowing", "[tensor]") {
  const auto s = TensorView::contiguous_strides({0, int64_t{1} << 40, int64_t{1} << 40});
  CHECK(s[2] == 1);
  CHECK(s[1] == int64_t{1} << 40);
  CHECK(s[0] == std::numeric_limits<int64_t>::max());
  std::vector<float> buf(4);
  TensorView v = f32_view(buf, {int64_t{1} << 40, int64_t{1} << 40, 4});
  CHECK_FALSE(v.bounds_problem().empty());  // rejected, not wrapped around
}
