// Spectral scaling laws: the fitted power laws q = a * M^beta of `muspec fit`, their file
// (laws.json, format "muspec.laws" version 1, schema in docs/scaling-laws.md) and prediction
// at a target model size with a prediction interval.
//
// Usage:
//   LawSet laws = read_laws_json("laws.json");
//   for (const LawPrediction& p : predict_laws(laws, 7e10))
//     ...  // p.group.matches(op_type, layer, num_layers), p.lower (the bound to plan NS for)
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace muspec::analysis {

inline constexpr const char* kLawsFormat = "muspec.laws";
inline constexpr int kLawsFormatVersion = 1;

/// Which matrices a group covers. Names (docs/scaling-laws.md "Grouping"):
///   "q/depth:0-0.25"   op type q, relative depth in [0, 0.25)
///   "q"                op type q, any depth
///   "depth:0.5-0.75"   any op type, relative depth in [0.5, 0.75)
///   "down/layer-from-end:0"  op type down in the last block; "layer-from-end:1" any op type,
///                      the block before the last
/// User group files may use any name.
struct GroupSelector {
  std::string name;
  std::string op_type;                ///< "" = any op type
  double depth_lo = 0, depth_hi = 1;  ///< rel_depth range [lo, hi); hi is inclusive when hi >= 1
  int layer_from_end = -1;            ///< >= 0: exactly this block counted from the end (0 = last)
  /// True when a matrix of this op type in block `layer` of a model with `num_layers` blocks
  /// belongs to the group. rel_depth = layer / (num_layers - 1) (0 for a one-block model).
  /// Matrices outside the blocks (layer < 0) or of unknown depth (num_layers <= 0) match no group.
  bool matches(const std::string& op_type, int64_t layer, int64_t num_layers) const;
};

/// One run's settled value of a group's quantile: one point of the fit.
struct RunPoint {
  std::string run;
  double model_params = 0;   ///< M
  double log_value = 0;      ///< y = mean over member matrices of the settled log-quantile (natural log)
  double log_se = 0;         ///< standard error of y from the layer and step spread
  double weight = 0;         ///< relative fit weight (normalized so that mean(1 / weight) = 1)
  double residual = 0;       ///< y - (log_a + beta log M), natural log
  int matrices = 0;          ///< member matrices with a settled value
  int unsettled = 0;         ///< member matrices whose series never settled (not used)
  std::vector<std::string> members;  ///< parameter names of the member matrices
  /// The Gaussian null's value for this run: mean over the settled members of E[log q] of an
  /// i.i.d. Gaussian matrix of the member's shape (NaN when not computed or read from an older file).
  double null_log_value = std::numeric_limits<double>::quiet_NaN();
};

/// Fit on all but the largest model size, evaluated at the largest size.
struct LeaveLargestOut {
  bool done = false;         ///< false when too few smaller sizes remain (reason in `note`)
  std::string note;
  double held_out_params = 0;
  double predicted_log = 0, actual_log = 0;
  double error_log = 0;      ///< predicted_log - actual_log
  double relative_error = 0; ///< exp(error_log) - 1
  double beta = 0;           ///< exponent fitted on the smaller sizes
  bool within_interval = false;  ///< actual inside the 95% prediction interval of that fit
};

/// The law against the Gaussian null: the exponent beta_null that i.i.d. Gaussian matrices of
/// the same members' shapes give under the same weighted fit, and beta - beta_null with its
/// 95% interval (docs/scaling-laws.md "The null").
struct NullComparison {
  bool done = false;         ///< false: no null for this law (reason in `note`)
  std::string note;
  double beta_null = 0;
  double se_beta_null = 0;   ///< from the simulation noise alone
  double diff = 0;           ///< beta - beta_null
  double se_diff = 0;        ///< sqrt(se_beta^2 + se_beta_null^2)
  double diff_ci_lo = 0, diff_ci_hi = 0;  ///< diff -+ t_{0.975, dof} se_diff (infinite when dof = 0)
  bool differs = false;      ///< the interval excludes 0
};

/// One fitted law: a group x quantile level x scale. Logarithms are natural.
struct FittedLaw {
  GroupSelector group;
  double quantile_level = 0;  ///< e.g. 0.05
  std::string scale = "rel_frob";
  std::string status = "ok";  ///< "ok" or "refused"
  std::string reason;         ///< why refused (e.g. "2 distinct model sizes, 3 needed")
  std::string method = "wls"; ///< "wls" (weighted least squares) or "huber" (IRLS)
  double log_a = 0, beta = 0;
  double se_log_a = 0, se_beta = 0, cov_log_a_beta = 0;  ///< parameter covariance (scaled by s^2)
  double beta_ci_lo = 0, beta_ci_hi = 0;   ///< 95% t-based confidence interval
  double log_a_ci_lo = 0, log_a_ci_hi = 0;
  bool has_bootstrap = false;
  int bootstrap_samples = 0;
  double beta_boot_lo = 0, beta_boot_hi = 0;  ///< 95% percentile bootstrap over layers and steps
  double r2 = 0;              ///< weighted coefficient of determination
  double residual_scale = 0;  ///< s: weighted residual standard deviation (natural log units)
  /// Pooled between-member standard deviation of the settled log-quantile: each member
  /// matrix's scatter around its run's group mean, pooled over the runs (natural log units).
  /// The per-matrix prediction interval adds it (docs/scaling-laws.md "Prediction").
  double member_sd = 0;
  bool has_member_sd = true;  ///< false when read from an older file without "member_sd" (then 0)
  /// Degrees of freedom of member_sd, sum over runs of (members - 1); 0 when unknown (a file
  /// written before it was recorded), which makes the per-matrix interval use `dof` alone.
  int member_dof = 0;
  int dof = 0;                ///< runs - 2
  double params_min = 0, params_max = 0;
  int num_sizes = 0, num_runs = 0;
  std::vector<RunPoint> points;
  LeaveLargestOut leave_largest_out;
  /// Every run has exactly one settled member: member_sd is then 0 and the per-matrix interval
  /// is really the group-mean interval.
  bool one_member_per_run = false;
  NullComparison null;
};

/// The content of a laws.json file.
struct LawSet {
  std::string muspec_version;
  std::string created;          ///< ISO 8601 UTC
  std::vector<std::string> inputs;  ///< the scan files
  std::string kind;             ///< record kind the laws describe ("momentum", "weight", ...)
  std::string scale = "rel_frob";
  std::string grouping;         ///< --group spec, e.g. "optype,depth:4"
  std::string burn_in;          ///< --burn-in spec, e.g. "auto"
  std::string method = "wls";
  std::vector<double> quantiles;
  /// How the records counted model size M: "total", "non-embedding" or "unknown" (records
  /// written before params_source); "" when not recorded (an older file).
  std::string params_definition;
  std::vector<std::string> params_sources;  ///< the records' params_source values, e.g. "manifest"
  /// The null the laws were compared with: "gaussian-simulation", or "" (none).
  std::string null_model;
  int null_draws = 0;           ///< simulated matrices per shape
  uint64_t null_seed = 0;
  std::vector<FittedLaw> laws;  ///< every group x quantile, refused ones included
  std::string path;             ///< the file read by read_laws_json ("" when built in memory)
  std::vector<std::string> notes;  ///< reader's one-line notes (e.g. laws without member_sd)
};

struct LawPrediction {
  GroupSelector group;
  double quantile_level = 0;  ///< e.g. 0.05
  std::string scale;          ///< "rel_frob" (sigma / ||X||_F, what NS sees), "rel_max" or "sigma"
  std::string kind;           ///< record kind of the law
  double predicted = 0;       ///< point prediction exp(log_a + beta log M) of the quantile at M
  double lower = 0, upper = 0;  ///< prediction interval of the group MEAN of a new run at `level`
  /// Prediction interval of ONE member matrix of a new run (adds member_sd^2 to the variance):
  /// the bound to plan each layer's NS for.
  double member_lower = 0, member_upper = 0;
  size_t law_index = 0;       ///< index of the law in LawSet::laws
  double level = 0.95;
  bool extrapolated = false;  ///< M outside [params_min, params_max] of the fit
  double beta = 0;            ///< the law's exponent, for display
};

/// Parses and validates a laws.json file. Throws InputError naming the file and the field
/// (e.g. "laws[3].beta: expected a number") when it is not valid JSON, of another format or
/// version, or misses a required field.
LawSet read_laws_json(const std::string& path);

/// Writes the laws atomically (lib/core/atomic_file.h); throws muspec::Error naming the path.
void write_laws_json(const std::string& path, const LawSet& laws);

/// The JSON document written by write_laws_json (non-finite numbers as null).
std::string laws_json_text(const LawSet& laws);

/// Plausible range of a target model size (--params), in parameters.
inline constexpr double kMinModelParams = 1e3, kMaxModelParams = 1e15;

/// One prediction per law with status "ok", in file order. The group-mean interval is
/// exp(yhat -+ t_{dof, (1+level)/2} * sqrt(var_fit(M) + s^2)), where var_fit is the variance of
/// the fitted line at log M and s^2 the residual variance of one run (weight 1); the
/// per-matrix interval uses sqrt(var_fit(M) + s^2 + member_sd^2) with t at the
/// Welch–Satterthwaite degrees of freedom (member_interval_dof). Laws with dof = 0 get
/// lower = 0 and upper = inf. Throws UsageError unless kMinModelParams <= model_params <=
/// kMaxModelParams and 0 < level < 1; throws InputError naming laws.path and laws[i] when a
/// prediction or lower bound is not finite, or exceeds 1 on the rel_frob scale (σ/‖G‖_F <= 1).
std::vector<LawPrediction> predict_laws(const LawSet& laws, double model_params, double level = 0.95);

/// Welch–Satterthwaite degrees of freedom of the per-matrix interval's variance
/// sd_pred² (dof) + member_sd² (member_dof): (v1 + v2)² / (v1²/dof + v2²/member_dof), kept
/// within [min(dof, member_dof), dof + member_dof]; `dof` when member_dof or member_sd is 0.
double member_interval_dof(const FittedLaw& law, double model_params);

/// Predicted log value and its prediction standard deviation for one law at M (helpers of
/// predict_laws, also used by the leave-largest-out check).
double law_log_prediction(const FittedLaw& law, double model_params);
double law_prediction_sd(const FittedLaw& law, double model_params);
/// Prediction standard deviation of one member matrix: sqrt(law_prediction_sd^2 + member_sd^2).
double law_member_prediction_sd(const FittedLaw& law, double model_params);

}  // namespace muspec::analysis
