// The rules every spectra.h5 record obeys (spectrum_record_problem): shapes, sigma ascending
// and finite, and summary numbers that are what sigma and frobenius give. The writer refuses a
// record that breaks them and the reader refuses a file that holds one.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "spectra/layer_metrics.h"
#include "spectra/summary.h"
#include "store/spectra_store.h"
#include "store/summary_read.h"

namespace muspec {

namespace {

using store_detail::quantile_level_text;

// Relative tolerance of the ratios to 1 (rel_max, rel_frob <= 1; frobenius >= sigma_max):
// frobenius comes from the data and sigma from the SVD or the (float32 on CUDA) Gram method,
// so a rank-1 matrix may have sigma_max a few float32 ulps above ||X||_F.
constexpr double kRatioTolerance = 1e-6;
// Relative tolerance of a stored value against its recomputation from stored numbers (the
// writer computes them with the same double operations; numpy-recomputed values differ by ulps).
constexpr double kRecomputeTolerance = 1e-9;

std::string num(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// Same convention as summarize_spectrum: x / 0 is inf for x > 0 and NaN for x = 0.
double safe_ratio(double n, double d) {
  if (d > 0.0) return n / d;
  return n > 0.0 ? std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
}

bool agrees(double stored, double expected) {
  if (std::isnan(expected)) return std::isnan(stored);
  if (stored == expected) return true;  // also inf == inf
  return std::isfinite(stored) && std::isfinite(expected) &&
         std::abs(stored - expected) <= kRecomputeTolerance * std::abs(expected);
}

// The summary numbers of a record. Unanalysed records (empty sigma) keep whatever summary
// their producer set (NaN included), but stored quantile ratios must still not claim values
// outside their ranges. For analysed records every number must be what sigma and frobenius give.
std::string summary_problem(const SpectrumRecord& r) {
  const SpectralSummary& s = r.summary;
  const bool analysed = !r.sigma.empty();
  for (size_t i = 0; i < s.quantiles.size(); ++i) {
    const QuantileValue& q = s.quantiles[i];
    const std::string at = "[" + std::to_string(i) + "] (level " + quantile_level_text(q.q) + ") = ";
    if (q.sigma < 0.0 || std::isinf(q.sigma)) return "quantile_sigma" + at + num(q.sigma) + " is negative or infinite";
    if (q.rel_max < 0.0 || q.rel_max > 1.0 + kRatioTolerance)
      return "quantile_rel_max" + at + num(q.rel_max) + " is outside [0, 1]";
    if (q.rel_frob < 0.0 || q.rel_frob > 1.0 + kRatioTolerance)
      return "quantile_rel_frob" + at + num(q.rel_frob) + " is outside [0, 1]";
    if (q.cond < 1.0 - kRatioTolerance) return "quantile_cond" + at + num(q.cond) + " is below 1";
  }
  if (!analysed) return {};
  const std::vector<double>& sigma = r.sigma;
  const struct {
    const char* name;
    double v;
  } finite[] = {{"sigma_max", s.sigma_max}, {"sigma_min", s.sigma_min},
                {"frobenius", s.frobenius}, {"nuclear", s.nuclear}};
  for (const auto& f : finite)
    if (!std::isfinite(f.v) || f.v < 0.0) return std::string(f.name) + " = " + num(f.v) + " is not a finite non-negative number";
  if (!agrees(s.sigma_max, sigma.back()))
    return "sigma_max = " + num(s.sigma_max) + " is not the largest sigma " + num(sigma.back());
  if (!agrees(s.sigma_min, sigma.front()))
    return "sigma_min = " + num(s.sigma_min) + " is not the smallest sigma " + num(sigma.front());
  if (s.frobenius < s.sigma_max * (1.0 - kRatioTolerance))
    return "frobenius = " + num(s.frobenius) + " is smaller than sigma_max = " + num(s.sigma_max);
  if (!agrees(s.cond, safe_ratio(s.sigma_max, s.sigma_min)))
    return "cond = " + num(s.cond) + " is not sigma_max / sigma_min";
  for (size_t i = 0; i < s.quantiles.size(); ++i) {
    const QuantileValue& q = s.quantiles[i];
    const std::string at = "[" + std::to_string(i) + "] (level " + quantile_level_text(q.q) + ") = ";
    if (!agrees(q.sigma, quantile_linear(sigma, q.q)))
      return "quantile_sigma" + at + num(q.sigma) + " disagrees with sigma (expected " +
             num(quantile_linear(sigma, q.q)) + ")";
    if (!agrees(q.rel_max, safe_ratio(q.sigma, s.sigma_max)))
      return "quantile_rel_max" + at + num(q.rel_max) + " is not quantile_sigma / sigma_max";
    if (!agrees(q.rel_frob, safe_ratio(q.sigma, s.frobenius)))
      return "quantile_rel_frob" + at + num(q.rel_frob) + " is not quantile_sigma / frobenius";
    if (!agrees(q.cond, safe_ratio(s.sigma_max, q.sigma)))
      return "quantile_cond" + at + num(q.cond) + " is not sigma_max / quantile_sigma";
  }
  return {};
}

/// spectrum_record_problem, with below_floor allowed up to `below_floor_limit`.
std::string record_problem(const SpectrumRecord& r, uint64_t below_floor_limit) {
  if (r.rows < 0 || r.cols < 0)
    return "negative matrix shape " + std::to_string(r.rows) + " x " + std::to_string(r.cols);
  if (r.slice < -1) return "slice " + std::to_string(r.slice) + " is neither -1 nor an index";
  if (r.nonfinite < 0) return "negative nonfinite count";
  for (int64_t d : r.tensor_shape)
    if (d < 0) return "negative dimension in tensor_shape";
  const std::vector<double>& s = r.sigma;
  if (!s.empty()) {
    const int64_t expected = std::min(r.rows, r.cols);
    if (static_cast<int64_t>(s.size()) != expected)
      return "sigma has " + std::to_string(s.size()) + " values but min(rows, cols) = " +
             std::to_string(expected);
    if (r.nonfinite > 0)
      return "the matrix has " + std::to_string(r.nonfinite) +
             " non-finite entries (not analysed) but sigma is not empty";
    for (size_t i = 0; i < s.size(); ++i) {
      if (!(s[i] >= 0.0) || std::isinf(s[i]))
        return "sigma[" + std::to_string(i) + "] is negative, infinite or NaN";
      if (i > 0 && s[i] < s[i - 1]) return "sigma is not ascending at index " + std::to_string(i);
    }
  }
  if (r.summary.below_floor < 0 || static_cast<uint64_t>(r.summary.below_floor) > below_floor_limit)
    return "below_floor " + std::to_string(r.summary.below_floor) + " is not between 0 and " +
           std::to_string(below_floor_limit);
  std::vector<double> levels;
  for (const QuantileValue& q : r.summary.quantiles) {
    if (!(q.q >= 0.0 && q.q <= 1.0)) return "quantile level " + quantile_level_text(q.q) + " is outside [0, 1]";
    levels.push_back(q.q);
  }
  std::sort(levels.begin(), levels.end());
  if (std::adjacent_find(levels.begin(), levels.end()) != levels.end())
    return "quantile levels repeat";
  return summary_problem(r);
}

}  // namespace

std::string spectrum_record_problem(const SpectrumRecord& r) { return record_problem(r, r.sigma.size()); }

std::string read_record_problem(const SpectrumRecord& r, bool sigma_read) {
  const uint64_t values = sigma_read || !r.sigma.empty() ? r.sigma.size() : static_cast<uint64_t>(std::max<int64_t>(std::min(r.rows, r.cols), 0));
  if (std::string problem = record_problem(r, values); !problem.empty()) return problem;
  for (const LayerMetricField& f : layer_metric_fields())
    if (!f.real && (r.layer_metrics.*f.count < -1 || r.layer_metrics.*f.count > static_cast<int64_t>(values)))
      return std::string(f.name) + " " + std::to_string(r.layer_metrics.*f.count) + " is not between -1 and the " +
             std::to_string(values) + " singular values";
  return {};
}

}  // namespace muspec
