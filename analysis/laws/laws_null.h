// A fitted law against the Gaussian null (docs/scaling-laws.md "The null"): the same runs, the
// same members (their shapes) and the same weighted line as the real law, with each member's
// settled log-quantile replaced by E[log q] of an i.i.d. Gaussian matrix of its shape.
#pragma once

#include <vector>

#include "laws/laws.h"
#include "laws/laws_null_model.h"
#include "laws/power_law.h"

namespace muspec::analysis {

/// Fills law.null and each point's null_log_value. `runs` are the samples the law was fitted on
/// (fit_power_law's input: the runs with settled members line up with law.points). The null fit
/// uses the real fit's final weights (Huber factors included), so beta - beta_null is exactly the
/// slope of the same fit of log(q / q_null). Its standard error adds the real fit's se_beta and
/// the simulation noise of beta_null (shapes' draws are independent; members of one shape share
/// their draws, which the variance accounts for); the interval is diff -+ t_{0.975, dof} se_diff.
/// Refused laws, the sigma scale, and members of unknown shape get done = false with a note.
void compare_with_null(FittedLaw& law, const std::vector<RunSample>& runs, GaussianNull* null);

/// Counts of fitted laws: compared with the null, and differing from it.
struct NullTally {
  int compared = 0, differ = 0, steeper = 0;  ///< steeper: differs with beta < beta_null
};
NullTally tally_null(const LawSet& laws);

}  // namespace muspec::analysis
