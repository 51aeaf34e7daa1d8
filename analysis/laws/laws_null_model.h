// The Gaussian null of the scaling laws: what spectral quantiles an i.i.d. Gaussian matrix of a
// given shape has. A trained matrix's sigma_q / ||X||_F shrinks with width even when training
// adds nothing (the Marchenko–Pastur bulk scales as 1/sqrt(min(m, n))), so an exponent is only
// informative against the exponent these matrices would give (docs/scaling-laws.md "The null").
//
// The quantiles are simulated, not taken from the Marchenko–Pastur limit: the sample models
// have 16-80 singular values per matrix, where the limit is off by several percent at q = 0.05
// and the scan's quantile (linear interpolation between order statistics) is a finite-sample
// statistic. Each draw uses the bidiagonal model of a Gaussian matrix (Householder
// bidiagonalization keeps the singular values and leaves independent chi entries), so a draw
// costs O(p) random numbers and an O(p^2) tridiagonal eigensolve, p = min(m, n), not a dense SVD.
//
// Usage:
//   GaussianNull null({0.05, 0.5}, "rel_frob", 200, 1);
//   NullStats s = null.stats(512, 1536, 0.05);   // E[log q] over draws and its standard error
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace muspec::analysis {

/// Singular values (ascending) of one rows x cols matrix with i.i.d. N(0, 1) entries, drawn
/// through the bidiagonal model: B upper bidiagonal p x p (p = min, N = max of the shape) with
/// diagonal chi_N, chi_{N-1}, ..., chi_{N-p+1} and superdiagonal chi_{p-1}, ..., chi_1, all
/// independent. `frobenius` (optional) receives ||X||_F = sqrt(sum of squared entries of B).
std::vector<double> gaussian_singular_values(int64_t rows, int64_t cols, std::mt19937_64& rng,
                                             double* frobenius = nullptr);

/// Draws per shape: `draws` up to p = min(rows, cols) = 256, then draws * 256 / p (rounded up,
/// at least min(draws, 10)). A quantile of p Gaussian singular values scatters about 1/p
/// (relative) between draws while a draw costs O(p^2), so this keeps the cost of a shape
/// linear in p (4096 x 4096 with 200: 13 draws, about 4 s) and its noise far below any fit's
/// uncertainty; the standard error reported is that of the draws actually made.
inline constexpr int64_t kFullDrawsUpTo = 256;
inline constexpr int kMinDraws = 10;
int null_draws_for(int draws, int64_t p);

/// The mean over draws of log(quantile) and its standard error (sd / sqrt(draws used)).
struct NullStats {
  double mean_log = 0, se_log = 0;
  int draws = 0;       ///< draws with a positive quantile (a log was taken)
  bool ok = false;     ///< false when fewer than 2 draws gave a positive value
};

/// Simulated quantiles of Gaussian matrices, cached per shape for the life of the object (one
/// `muspec fit` run). The draws of a shape are seeded from `seed` mixed with the shape, so a
/// value does not depend on which shapes were asked for before it.
class GaussianNull {
 public:
  /// `levels`: the quantile levels to keep per shape; `scale`: rel_frob (sigma_q / ||X||_F) or
  /// rel_max (sigma_q / sigma_max); `draws` >= 2 matrices per shape (fewer for large shapes:
  /// null_draws_for).
  GaussianNull(std::vector<double> levels, std::string scale, int draws, uint64_t seed);

  /// Statistics of log q at `level` (one of the constructor's levels) for a rows x cols matrix.
  /// Throws UsageError for a level it was not built for or a shape with a dimension < 1.
  NullStats stats(int64_t rows, int64_t cols, double level);

  int draws() const { return draws_; }
  uint64_t seed() const { return seed_; }
  const std::string& scale() const { return scale_; }
  size_t shapes_simulated() const { return cache_.size(); }

 private:
  const std::vector<NullStats>& simulate(int64_t rows, int64_t cols);

  std::vector<double> levels_;
  std::string scale_;
  int draws_;
  uint64_t seed_;
  // Keyed by (min, max) of the shape: the singular values of X and X^T are the same.
  std::map<std::pair<int64_t, int64_t>, std::vector<NullStats>> cache_;
};

}  // namespace muspec::analysis
