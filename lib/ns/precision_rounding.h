// Rounding rules of the matrix-level simulations (ns/simulate.cpp, ns/spectral_simulate.cpp):
// no rounding beyond the scalar type (f64, f32), or every product and element-wise result
// rounded to bfloat16 (round to nearest even) as Muon's bf16 kernels store it.
#pragma once

#include <Eigen/Dense>

#include <cstdint>
#include <cstring>

#include "core/dtype.h"

namespace muspec::ns::detail {

template <class T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

inline float round_bf16(float x) {
  const uint32_t bits = static_cast<uint32_t>(float_to_bf16(x)) << 16;
  float y;
  std::memcpy(&y, &bits, sizeof y);
  return y;
}

struct NoRound {
  template <class M>
  M operator()(M m) const { return m; }
  template <class T>
  T scalar(T x) const { return x; }
};

struct RoundBf16 {
  Mat<float> operator()(const Mat<float>& m) const {
    return m.unaryExpr([](float x) { return round_bf16(x); });
  }
  float scalar(float x) const { return round_bf16(x); }
};

}  // namespace muspec::ns::detail
