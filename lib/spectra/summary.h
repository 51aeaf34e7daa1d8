// Per-matrix spectral summary: the numbers a Muon user reads off a spectrum.
#pragma once

#include <cstdint>
#include <vector>

namespace muspec {

/// Default quantile levels of `muspec scan`.
const std::vector<double>& default_quantiles();

/// One quantile of the singular values, on three scales.
struct QuantileValue {
  double q = 0.0;         ///< level in [0, 1]
  double sigma = 0.0;     ///< raw singular value at level q
  double rel_max = 0.0;   ///< sigma / sigma_max
  double rel_frob = 0.0;  ///< sigma / ||X||_F: the scale Muon's NS sees after normalization
  double cond = 0.0;      ///< sigma_max / sigma (quantile condition number; inf when sigma = 0)
};

struct SpectralSummary {
  double sigma_max = 0.0;
  double sigma_min = 0.0;
  double frobenius = 0.0;       ///< ||X||_F
  double nuclear = 0.0;         ///< sum of singular values
  double cond = 0.0;            ///< sigma_max / sigma_min; inf when sigma_min = 0
  double stable_rank = 0.0;     ///< ||X||_F^2 / sigma_max^2
  double effective_rank = 0.0;  ///< exp(entropy of sigma / sum sigma) (Roy & Vetterli 2007)
  int64_t below_floor = 0;      ///< singular values under the method's reliable floor
  std::vector<QuantileValue> quantiles;
};

/// Quantile of ascending data with numpy's default 'linear' rule:
/// position h = (n - 1) q, value = x[floor h] + (h - floor h) (x[floor h + 1] - x[floor h]).
double quantile_linear(const std::vector<double>& ascending, double q);

/// Summarizes ascending singular values. `frobenius` is ||X||_F computed from the data
/// (more robust than from sigma when sigma has unreliable tails); `floor` is the method's
/// reliable floor in the units of sigma.
SpectralSummary summarize_spectrum(const std::vector<double>& sigma_ascending, double frobenius,
                                   double floor, const std::vector<double>& quantile_levels);

}  // namespace muspec
