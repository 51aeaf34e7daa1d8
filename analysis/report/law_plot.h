// The scaling-law figure of `muspec plot`: one log-log panel per layer group, the settled
// quantile of every run against model size (the points `muspec fit` fitted, with ±1 standard
// error bars), the fitted law q = a·M^β with its 95% confidence band, and optionally the law
// extended (dashed) to a target model size. Drawn from laws.json alone.
#pragma once

#include <string>

#include "laws/laws.h"

namespace muspec::analysis {

struct LawPlotOptions {
  double quantile_level = -1;  ///< which quantile's laws; < 0: the smallest level in the file
  double target_params = 0;    ///< > 0: extend each law (dashed) to this model size
  int panels_per_row = 4;
};

/// The SVG document. Throws UsageError when the file holds no law at the requested quantile
/// (naming the levels it has) or the target size is outside [kMinModelParams, kMaxModelParams].
std::string laws_svg(const LawSet& laws, const LawPlotOptions& options);

/// The quantile levels of `laws` that have at least one law, ascending.
std::vector<double> plotted_quantile_levels(const LawSet& laws);

}  // namespace muspec::analysis
