// Reports of `muspec fit` and `muspec predict`: the fits CSV (one row per group x quantile),
// the prediction CSV/JSON, and the tables printed on the terminal. Columns: docs/scaling-laws.md.
#pragma once

#include <string>
#include <vector>

#include "laws/laws.h"

namespace muspec::analysis {

/// One row per law, refused ones included (empty numeric cells). Header first.
std::string laws_csv(const LawSet& laws);

/// Fixed-width terminal table of the fits: group, q, runs, sizes, beta [95% CI], beta_null,
/// beta - beta_null [95% CI] ('*' when it excludes 0), bootstrap CI, a, R^2, leave-largest-out
/// error; refused groups with their reason.
std::string laws_table(const LawSet& laws);

/// Lines under the table: the definition of M and its sources, and how many laws differ from
/// the Gaussian null (with the groups, per quantile level).
std::string laws_footer(const LawSet& laws);

/// One row per prediction. Header first.
std::string predictions_csv(const std::vector<LawPrediction>& predictions, double model_params);

/// {"format": "muspec.predictions", "version": 1, "model_params", "level", "predictions": [...]}.
std::string predictions_json(const std::vector<LawPrediction>& predictions, double model_params,
                             const std::string& laws_path);

/// Fixed-width terminal table of predictions ('*' marks extrapolation).
std::string predictions_table(const std::vector<LawPrediction>& predictions, double model_params);

}  // namespace muspec::analysis
