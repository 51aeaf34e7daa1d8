// Rounding rules of the matrix-level simulations (ns/simulate.cpp, ns/spectral_simulate.cpp):
// no rounding beyond the scalar type (f64, f32), or results rounded to bfloat16 (round to
// nearest even) as Muon's bf16 kernels store them. `gemm` rounds a matrix product's float32
// result; it may first jitter it by a few float32 ulps (a stand-in for another GEMM's
// accumulation order, ns::Bf16Rounding), which `operator()` (element-wise results) never does.
#pragma once

#include <Eigen/Dense>

#include <cstdint>
#include <cstring>
#include <random>

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
  template <class M>
  M gemm(M m) const { return m; }
  template <class T>
  T scalar(T x) const { return x; }
};

struct RoundBf16 {
  Mat<float> operator()(const Mat<float>& m) const {
    return m.unaryExpr([](float x) { return round_bf16(x); });
  }
  Mat<float> gemm(const Mat<float>& m) const { return (*this)(m); }
  float scalar(float x) const { return round_bf16(x); }
};

/// RoundBf16 whose product results are first moved by up to `ulps` float32 ulps (uniform,
/// from a seeded generator, so a realization is reproducible).
class RoundBf16Jittered {
 public:
  RoundBf16Jittered(int ulps, uint64_t seed) : ulps_(ulps), rng_(seed) {}
  Mat<float> operator()(const Mat<float>& m) const { return RoundBf16{}(m); }
  Mat<float> gemm(const Mat<float>& m) {
    std::uniform_real_distribution<double> u(-ulps_, ulps_);
    const double ulp = 1.0 / (1 << 23);  // one float32 ulp relative to the value
    return m.unaryExpr([&](float x) { return round_bf16(static_cast<float>(x * (1.0 + u(rng_) * ulp))); });
  }
  float scalar(float x) const { return round_bf16(x); }

 private:
  double ulps_;
  std::mt19937_64 rng_;
};

}  // namespace muspec::ns::detail
