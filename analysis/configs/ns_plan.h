// NS budget planning, observe-then-commit (`muspec plan`, docs/ns-config.md "Budget planning"):
// from an early-training scan, give every operator type (or every block) one NS step count so
// that the total NS FLOPs per optimizer step stay within a budget, maximizing first the WORST
// orthogonalization quality over all matrices, then the MEAN.
//
// Quality of a matrix after k steps: the fraction of its singular values whose output lands in
// the band (ns::evaluate_spectrum band_fraction), i.e. the share of directions orthogonalized.
//
// Algorithm (exact, proof in the docs):
//  1. max-min: for a level t, each group's cheapest option with worst quality ≥ t; t is
//     feasible iff those costs sum to ≤ budget. Feasibility is monotone in t, so a binary search
//     over the sorted distinct option qualities finds the optimal level t*.
//  2. mean: among options with worst ≥ t*, a multiple-choice knapsack maximizing the summed
//     quality, solved by dynamic programming over the budget cut into `cells` units with every
//     cost rounded UP (so the result is feasible); the same DP with costs rounded DOWN is a
//     relaxation whose optimum bounds the true optimum from above: the reported gap.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "configs/ns_config.h"
#include "configs/recommend.h"

namespace muspec {

/// One step count of one group: its cost and the quality it reaches.
struct PlanOption {
  int steps = 0;
  double flops = 0.0;        ///< summed over the group's matrices
  double worst = 0.0;        ///< min quality over the group's matrices
  double quality_sum = 0.0;  ///< summed quality over the group's matrices
};

/// The solution of the allocation problem.
struct Allocation {
  bool feasible = false;
  std::vector<int> choice;        ///< option index per group
  double flops = 0.0;
  double worst = 0.0;             ///< = the optimal max-min level
  double quality_sum = 0.0;
  double quality_sum_upper = 0.0; ///< upper bound on the best quality_sum with worst ≥ `worst`
  double cheapest_flops = 0.0;    ///< cost of the cheapest allocation (for error messages)
  double dearest_flops = 0.0;     ///< cost of the most expensive allocation
  /// The budget covers the most expensive allocation: every group got its best option reaching
  /// `worst` (the cheapest among equals) without the knapsack; quality_sum_upper = quality_sum.
  bool unconstrained = false;
};

/// Largest `cells` accepted: the knapsack keeps (cells + 1) doubles twice and one byte per
/// group and cell for the solution (10^7 cells: 160 MB + groups × 10 MB).
inline constexpr int kMaxPlanCells = 10000000;

/// Throws UsageError unless 1 ≤ cells ≤ kMaxPlanCells and budget is finite and > 0.
void check_plan_limits(double budget, int cells);

/// Solves max-min then max-sum under sum of flops ≤ budget. `groups[g]` lists group g's options
/// (any order, non-empty, finite non-negative costs). `cells` discretizes the budget for the
/// knapsack; budget and cells are checked with check_plan_limits. A budget at or above the most
/// expensive allocation is solved exactly without the knapsack (Allocation::unconstrained).
Allocation allocate_budget(const std::vector<std::vector<PlanOption>>& groups, double budget, int cells = 50000);

enum class PlanGrouping { OpType, Layer };

struct PlanOptions {
  std::string family = "keller";    ///< catalog name, schedule file or "designed"
  std::optional<ns::Band> band;
  PlanGrouping by = PlanGrouping::OpType;
  std::optional<double> budget;     ///< total NS flops per optimizer step
  std::optional<double> mean_steps; ///< or: the cost of this many steps on every matrix
  int max_steps = 15;
  double quantile = 0.05;           ///< lower bounds reported in the config (and for "designed")
  int cells = 50000;
  ns::Precision precision = ns::Precision::BF16;  ///< the arithmetic the promise is made for (recommend's rule)
};

struct PlanGroupResult {
  std::string name;
  std::vector<size_t> members;      ///< indices into NsInputs::matrices
  std::vector<PlanOption> options;  ///< steps = 1..max_steps
  int chosen = 0;                   ///< index into options
};

struct PlanResult {
  NsConfig config;
  std::vector<PlanGroupResult> groups;
  Allocation allocation;
  double budget = 0.0;
  int64_t matrices = 0;
  std::vector<std::string> skipped;
};

/// Throws UsageError unless exactly one of budget and mean_steps is given, the budget is finite
/// and > 0, 1 ≤ cells ≤ kMaxPlanCells and mean_steps lies in [1, max_steps].
void check_plan_options(const PlanOptions& o);

/// Plans the allocation. Matrices whose lower bound is unusable (NaN, infinite, above 1: see
/// lower_bound_problem) are skipped with the reason. Throws UsageError when neither or both of budget and mean_steps are
/// given, or when the budget is below the cheapest allocation (one step everywhere; the
/// message gives that cost).
PlanResult plan_ns_budget(const NsInputs& inputs, const PlanOptions& o);

}  // namespace muspec
