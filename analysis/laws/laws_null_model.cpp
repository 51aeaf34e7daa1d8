#include "laws/laws_null_model.h"

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "spectra/summary.h"

namespace muspec::analysis {

namespace {

constexpr double kLevelMatch = 1e-9;

/// splitmix64 finalizer: decorrelates the per-shape seeds derived from one user seed.
uint64_t mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double chi(double dof, std::mt19937_64& rng) {
  std::chi_squared_distribution<double> d(dof);
  return std::sqrt(d(rng));
}

}  // namespace

int null_draws_for(int draws, int64_t p) {
  if (p <= kFullDrawsUpTo) return draws;
  const double scaled = std::ceil(static_cast<double>(draws) * static_cast<double>(kFullDrawsUpTo) / static_cast<double>(p));
  return std::max(std::min(draws, kMinDraws), static_cast<int>(scaled));
}

std::vector<double> gaussian_singular_values(int64_t rows, int64_t cols, std::mt19937_64& rng, double* frobenius) {
  if (rows < 1 || cols < 1) throw UsageError("gaussian_singular_values: shape must be at least 1 x 1");
  const int64_t p = std::min(rows, cols), n = std::max(rows, cols);
  // Bidiagonal entries: d_i ~ chi_{n-i}, e_i ~ chi_{p-1-i} (i from 0).
  std::vector<double> d(static_cast<size_t>(p)), e(static_cast<size_t>(p > 0 ? p - 1 : 0));
  double frob2 = 0;
  for (int64_t i = 0; i < p; ++i) {
    d[static_cast<size_t>(i)] = chi(static_cast<double>(n - i), rng);
    frob2 += d[static_cast<size_t>(i)] * d[static_cast<size_t>(i)];
    if (i + 1 < p) {
      e[static_cast<size_t>(i)] = chi(static_cast<double>(p - 1 - i), rng);
      frob2 += e[static_cast<size_t>(i)] * e[static_cast<size_t>(i)];
    }
  }
  if (frobenius) *frobenius = std::sqrt(frob2);
  // Eigenvalues of the tridiagonal B^T B: diagonal d_i^2 + e_{i-1}^2, off-diagonal d_i e_i.
  // Squaring costs relative accuracy only for sigma below ~1e-8 sigma_max, far under the
  // quantiles fitted here (a square Gaussian matrix has sigma_min ~ sigma_max / (4 p)).
  Eigen::VectorXd diag(p), sub(std::max<int64_t>(p - 1, 0));
  for (int64_t i = 0; i < p; ++i) {
    const double up = i > 0 ? e[static_cast<size_t>(i - 1)] : 0.0;
    diag(i) = d[static_cast<size_t>(i)] * d[static_cast<size_t>(i)] + up * up;
    if (i + 1 < p) sub(i) = d[static_cast<size_t>(i)] * e[static_cast<size_t>(i)];
  }
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver;
  solver.computeFromTridiagonal(diag, sub, Eigen::EigenvaluesOnly);
  if (solver.info() != Eigen::Success) throw Error("gaussian_singular_values: tridiagonal eigensolver did not converge");
  std::vector<double> sigma(static_cast<size_t>(p));
  for (int64_t i = 0; i < p; ++i) sigma[static_cast<size_t>(i)] = std::sqrt(std::max(0.0, solver.eigenvalues()(i)));
  std::sort(sigma.begin(), sigma.end());
  return sigma;
}

GaussianNull::GaussianNull(std::vector<double> levels, std::string scale, int draws, uint64_t seed)
    : levels_(std::move(levels)), scale_(std::move(scale)), draws_(draws), seed_(seed) {
  if (scale_ != "rel_frob" && scale_ != "rel_max")
    throw UsageError("Gaussian null: scale '" + scale_ + "' has no null (rel_frob or rel_max)");
  if (draws_ < 2) throw UsageError("Gaussian null: at least 2 draws per shape");
  for (double q : levels_)
    if (!(q >= 0 && q <= 1)) throw UsageError("Gaussian null: levels must lie in [0, 1]");
}

const std::vector<NullStats>& GaussianNull::simulate(int64_t rows, int64_t cols) {
  const std::pair<int64_t, int64_t> key{std::min(rows, cols), std::max(rows, cols)};
  auto it = cache_.find(key);
  if (it != cache_.end()) return it->second;
  std::mt19937_64 rng(mix(seed_ ^ mix(static_cast<uint64_t>(key.first) * 0x100000001b3ull + static_cast<uint64_t>(key.second))));
  std::vector<std::vector<double>> logs(levels_.size());
  const int draws = null_draws_for(draws_, key.first);
  for (int k = 0; k < draws; ++k) {
    double frob = 0;
    const std::vector<double> sigma = gaussian_singular_values(key.first, key.second, rng, &frob);
    const double denom = scale_ == "rel_max" ? sigma.back() : frob;
    for (size_t l = 0; l < levels_.size(); ++l) {
      const double v = quantile_linear(sigma, levels_[l]) / denom;  // the scan's quantile rule
      if (std::isfinite(v) && v > 0) logs[l].push_back(std::log(v));
    }
  }
  std::vector<NullStats> out(levels_.size());
  for (size_t l = 0; l < levels_.size(); ++l) {
    const auto& v = logs[l];
    NullStats& s = out[l];
    s.draws = static_cast<int>(v.size());
    if (v.size() < 2) continue;
    double mean = 0, ss = 0;
    for (double x : v) mean += x / static_cast<double>(v.size());
    for (double x : v) ss += (x - mean) * (x - mean);
    s.mean_log = mean;
    s.se_log = std::sqrt(ss / static_cast<double>(v.size() - 1) / static_cast<double>(v.size()));
    s.ok = true;
  }
  return cache_.emplace(key, std::move(out)).first->second;
}

NullStats GaussianNull::stats(int64_t rows, int64_t cols, double level) {
  if (rows < 1 || cols < 1) throw UsageError("Gaussian null: shape must be at least 1 x 1");
  for (size_t l = 0; l < levels_.size(); ++l)
    if (std::fabs(levels_[l] - level) < kLevelMatch) return simulate(rows, cols)[l];
  throw UsageError("Gaussian null: level " + std::to_string(level) + " was not simulated");
}

}  // namespace muspec::analysis
