// Power-law fits of settled spectral quantiles across model sizes: log q = log a + beta log M.
// Weighted least squares (weights from the settled-value spread) or Huber IRLS, t-based and
// bootstrap confidence intervals, and a leave-largest-out check. docs/scaling-laws.md "The fit".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "laws/laws.h"

namespace muspec::analysis {

/// A straight-line fit y = intercept + slope x.
struct LineFit {
  double intercept = 0, slope = 0;
  double var_intercept = 0, var_slope = 0, cov = 0;  ///< s^2 (X^T W X)^-1
  double residual_scale = 0;  ///< s = sqrt(sum w r^2 / dof); 0 when dof = 0
  int dof = 0;                ///< points - 2
  double r2 = 0;              ///< weighted R^2 (NaN when y is constant and the fit is not exact)
  std::vector<double> residuals;  ///< y - fit, per point
  std::vector<double> weights;    ///< final weights (input weights x Huber weights)
  int iterations = 1;             ///< IRLS iterations (1 for least squares)
};

/// Weighted least squares; w > 0. Needs at least two distinct x (throws UsageError otherwise).
LineFit fit_line_wls(const std::vector<double>& x, const std::vector<double>& y, const std::vector<double>& w);

/// Huber M-estimate by iteratively reweighted least squares, starting from WLS. The scale is
/// re-estimated each iteration as 1.4826 * median |r sqrt(w)|; a point with standardized
/// residual u gets weight min(1, c / |u|). Covariance: that of the final weighted fit.
LineFit fit_line_huber(const std::vector<double>& x, const std::vector<double>& y, const std::vector<double>& w,
                       double huber_c = 1.345);

/// One matrix of a run: its settled log-quantile values (median and robust scale over steps).
struct MatrixSample {
  std::string parameter;
  std::vector<double> settled_log_values;
  double log_median = 0, log_scale = 0;
  int64_t rows = 0, cols = 0;  ///< the matrix's shape (0: unknown), for the Gaussian null
};

/// All member matrices of one group in one run.
struct RunSample {
  std::string run;
  double model_params = 0;
  std::vector<MatrixSample> matrices;  ///< settled members
  std::vector<std::string> unsettled;  ///< members whose series never settled
};

struct PowerLawOptions {
  bool robust = false;       ///< Huber IRLS instead of WLS
  double huber_c = 1.345;
  int bootstrap = 0;         ///< bootstrap replicates (0 = none)
  uint64_t seed = 0;
  int min_sizes = 3;         ///< fewer distinct model sizes: the group is refused
};

/// The run-level point of a run: y = mean of the member medians, with the standard error from
/// this run alone (max of between-matrix variance and mean variance of a median over steps,
/// (1.2533 * scale)^2 / steps, divided by n). fit_power_law replaces it with pooled spreads
/// (docs/scaling-laws.md "Weights"). Weights are not set here.
RunPoint aggregate_run(const RunSample& run);

/// Fits one group and quantile level. Runs without settled members are dropped; fewer than
/// `min_sizes` distinct sizes gives status "refused" with the reason. Also sets member_sd, the
/// pooled scatter of the member matrices around their run's group mean (docs/scaling-laws.md).
FittedLaw fit_power_law(const GroupSelector& group, double quantile_level, const std::string& scale,
                        const std::vector<RunSample>& runs, const PowerLawOptions& options);

}  // namespace muspec::analysis
