// Burn-in detection and settled values of a quantile's trajectory over training steps.
//
// Rule (`--burn-in auto`, docs/scaling-laws.md "Burn-in"): work on y = log(quantile). The end of
// burn-in is the first checkpoint k such that every later point (k included) lies within a band
// of half-width `band` around the median of y[k..]; band = max(tolerance, noise_multiplier *
// noise), where noise = 1.4826 * MAD(successive differences over the last half of the series) /
// sqrt(2) estimates the step-to-step scatter of a settled series. The settled segment must hold
// at least `min_settled` checkpoints and cover at least the last `min_settled_span` of the
// observed step range (so a slow drift, flat over its last few points, does not count as
// settled); otherwise the series never settles and is not used in fits.
// `--burn-in STEP` keeps steps >= STEP; `--burn-in FRACTION` (0 <= f < 1, written with a '.')
// keeps steps >= f * (last step of the series).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace muspec::analysis {

struct BurnInRule {
  enum class Mode { Auto, Step, Fraction };
  Mode mode = Mode::Auto;
  int64_t step = 0;          ///< Mode::Step: first settled step
  double fraction = 0.0;     ///< Mode::Fraction: settled from fraction * last step
  double tolerance = 0.1;    ///< minimum band half-width, natural-log units (~10%)
  double noise_multiplier = 3.0;
  int min_settled = 3;       ///< points a settled segment needs (auto mode)
  double min_settled_span = 0.2;  ///< fraction of the step range a settled segment covers (auto mode)
};

/// Parses "auto", "STEP" (an integer in [0, 2^63 - 1], parsed exactly, no exponent) or
/// "FRACTION" (a number with '.' or an exponent, in [0, 1)). Throws UsageError naming the
/// value otherwise (out-of-range steps included).
BurnInRule parse_burn_in(const std::string& spec);

/// The spelling of a rule, as written to laws.json ("auto", "500", "0.25").
std::string burn_in_spec(const BurnInRule& rule);

/// A quantile series reduced to its settled value.
struct SettledValue {
  bool settled = false;
  bool checked = true;           ///< false when the series was too short to check (all points used)
  int64_t burn_in_end_step = -1; ///< first settled step; -1 when never settled
  double log_median = 0.0;       ///< median of log values over the settled steps
  double log_scale = 0.0;        ///< 1.4826 * MAD of the settled log values (robust sd)
  double band = 0.0;             ///< band half-width used by the auto rule
  std::vector<double> settled_log_values;  ///< log values of the settled steps, in step order
  std::string reason;            ///< why not settled
};

/// Settles one series. `steps` ascending and distinct (any int64: spans are computed in
/// double), `values` > 0 and finite (one per step); the caller drops other points. Throws
/// UsageError on mismatched lengths or unsorted steps.
SettledValue settle_series(const std::vector<int64_t>& steps, const std::vector<double>& values,
                           const BurnInRule& rule);

/// Median of a copy of the data (mean of the middle two for even sizes); NaN when empty.
double median_of(std::vector<double> v);

/// 1.4826 * median absolute deviation from the median: the robust sd of normal data.
double robust_scale(const std::vector<double>& v);

}  // namespace muspec::analysis
