// `muspec fit` as a library call: spectra records of several model sizes -> per-matrix
// quantile series over steps -> settled values (burn_in.h) -> groups (grouping.h) -> one power
// law per group and quantile level (power_law.h).
#pragma once

#include <string>
#include <vector>

#include "laws/burn_in.h"
#include "laws/laws.h"
#include "laws/power_law.h"
#include "spectra/record.h"

namespace muspec::analysis {

struct ScalingFitOptions {
  std::vector<double> quantiles;        ///< levels to fit; empty = every level the records carry
  std::string scale = "rel_frob";       ///< rel_frob | rel_max | sigma
  std::string grouping = "optype,depth:4";
  BurnInRule burn_in;
  std::string kind = "auto";            ///< record kind; auto = momentum when present, else weight
  std::string transform = "none";       ///< records of this input transform only
  bool all_matrices = false;            ///< false: Muon matrices (record.muon) only
  /// Which definition of model size M the records must carry (their params_source): auto (any
  /// one definition, never a mix), total, or non-embedding (records of the other are left out).
  std::string params = "auto";
  int null_draws = 200;                 ///< Gaussian matrices simulated per shape for the null; 0: no null
  uint64_t null_seed = 1;
  PowerLawOptions fit;
};

/// A series (run x matrix x quantile) that never settled, or was unusable.
struct SeriesIssue {
  std::string run, parameter;
  double quantile_level = 0;
  std::string reason;
};

struct ScalingFitResult {
  LawSet laws;                          ///< inputs, muspec_version and created are left to the caller
  std::vector<SeriesIssue> unsettled;   ///< series left out of the fits
  std::vector<std::string> notices;     ///< one-line notes (records without model size, ...)
  std::vector<std::string> warnings;    ///< one-line warnings (groups with one member per run)
  size_t records_used = 0, series = 0;
};

/// The most bootstrap replicates a fit takes (each refits every group).
inline constexpr int kMaxBootstrap = 100000;

/// Throws UsageError naming the option when `options` hold a value fit_scaling_laws refuses;
/// callers run it before reading their inputs, so a bad option fails at once.
void check_scaling_fit_options(const ScalingFitOptions& options);

/// Checks the options (check_scaling_fit_options) and fits every group x quantile level,
/// each compared with the Gaussian null (laws_null.h) unless null_draws is 0 or the scale is sigma.
/// Throws UsageError when the records count M in more than one way (params_source total vs
/// non-embedding) under params = auto.
/// Records without a model size, of another kind or transform, or (by default) not Muon
/// matrices are left out with a notice; a group with fewer than 3 sizes is refused, not an error.
ScalingFitResult fit_scaling_laws(const std::vector<SpectrumRecord>& records, const ScalingFitOptions& options);

/// The value of a record's quantile at `level` on `scale`, from its summary (or from sigma when
/// the summary lacks the level); NaN when unavailable.
double record_quantile(const SpectrumRecord& record, double level, const std::string& scale);

}  // namespace muspec::analysis
