// Built-in NS schedules and the lookup that turns a user's spelling into a Schedule.
#pragma once

#include <string>
#include <vector>

#include "ns/schedule.h"

namespace muspec::ns {

/// Names of the built-in schedules, in display order:
/// keller, cubic, polar-express, you-5, jiacheng-6, deepseek-v4.
std::vector<std::string> catalog_names();

/// The built-in schedule `name`. Throws UsageError listing the valid names.
Schedule builtin_schedule(const std::string& name);

/// The unscaled 8-row Polar Express table (reference §5.8; Algorithm 1 of arXiv 2505.16932,
/// NoahAmsel/PolarExpress polar_express/basic.py), before the 1.01 safety factor.
std::vector<OddPoly> polar_express_unscaled_table();

/// The cushion that reproduces that table (reference §5.8).
constexpr double kPolarExpressCushion = 0.02407327424182761;

/// A catalog name, or a path to a schedule file (load_schedule_file). Throws UsageError when
/// `spec` is neither.
Schedule resolve_schedule(const std::string& spec);

}  // namespace muspec::ns
