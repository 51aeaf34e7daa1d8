// plan: NS step allocation under a FLOP budget. Oracle: brute-force enumeration of every
// allocation of small instances (max-min first, then max mean), with qualities and FLOPs of the
// planted spectra recomputed by hand.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "ns/catalog.h"
#include "configs/ns_plan.h"

using namespace muspec;

namespace {

struct Best {
  bool feasible = false;
  double worst = -1.0, sum = -1.0;
};

// Every allocation: the best worst, then the best sum at that worst.
Best brute_force(const std::vector<std::vector<PlanOption>>& groups, double budget) {
  Best b;
  std::vector<size_t> idx(groups.size(), 0);
  while (true) {
    double f = 0, w = 1e300, s = 0;
    for (size_t g = 0; g < groups.size(); ++g) {
      f += groups[g][idx[g]].flops;
      w = std::min(w, groups[g][idx[g]].worst);
      s += groups[g][idx[g]].quality_sum;
    }
    if (f <= budget) {
      if (!b.feasible || w > b.worst || (w == b.worst && s > b.sum)) b = {true, w, s};
    }
    size_t g = 0;
    while (g < groups.size() && ++idx[g] == groups[g].size()) idx[g++] = 0;
    if (g == groups.size()) break;
  }
  return b;
}

// The best quality sum over allocations costing <= budget whose every option reaches `level`
// (-1 when none does).
double best_sum_at_level(const std::vector<std::vector<PlanOption>>& groups, double budget, double level) {
  double best = -1.0;
  std::vector<size_t> idx(groups.size(), 0);
  while (true) {
    double f = 0, s = 0;
    bool ok = true;
    for (size_t g = 0; g < groups.size(); ++g) {
      f += groups[g][idx[g]].flops;
      s += groups[g][idx[g]].quality_sum;
      ok = ok && groups[g][idx[g]].worst >= level;
    }
    if (ok && f <= budget) best = std::max(best, s);
    size_t g = 0;
    while (g < groups.size() && ++idx[g] == groups[g].size()) idx[g++] = 0;
    if (g == groups.size()) break;
  }
  return best;
}

// The discretization bound of allocate_budget's knapsack with G groups and unit u = budget/cells:
// a cost c takes ceil(c/u) <= c/u + 1 cells, so every allocation of true cost <= budget - G u
// fits the rounded-up DP (the reported sum is at least their best), and one that fits the
// rounded-down relaxation (floor(c/u) >= c/u - 1) costs <= budget + G u (the reported upper
// bound is at most their best). Checks both sides: the gap can be no larger than
// opt(budget + G u) - opt(budget - G u).
void check_gap(const std::vector<std::vector<PlanOption>>& groups, double budget, int cells, const Allocation& a) {
  const double slack = static_cast<double>(groups.size()) * budget / cells;
  const double below = best_sum_at_level(groups, budget - slack, a.worst);
  const double above = best_sum_at_level(groups, budget + slack, a.worst);
  INFO("cells " << cells << ", sum " << a.quality_sum << ", upper " << a.quality_sum_upper << ", opt(B-Gu) "
                << below << ", opt(B+Gu) " << above);
  if (below >= 0) CHECK(a.quality_sum >= below - 1e-9);
  CHECK(a.quality_sum_upper <= above + 1e-9);
  CHECK(a.quality_sum_upper >= a.quality_sum);
}

std::vector<std::vector<PlanOption>> random_instance(std::mt19937& rng, bool integer_costs) {
  std::uniform_int_distribution<int> ng(1, 4), nk(1, 5), cost(1, 20), qual(0, 10);
  std::uniform_real_distribution<double> rcost(0.5, 20.0);
  std::vector<std::vector<PlanOption>> groups(ng(rng));
  for (auto& g : groups) {
    const int k = nk(rng);
    for (int s = 1; s <= k; ++s) {
      PlanOption o;
      o.steps = s;
      o.flops = integer_costs ? cost(rng) : rcost(rng);
      o.worst = qual(rng) / 10.0;  // ties on purpose
      o.quality_sum = o.worst + qual(rng) / 10.0;
      g.push_back(o);
    }
  }
  return groups;
}

}  // namespace

TEST_CASE("plan: allocation matches brute force (integer costs: exact)", "[plan]") {
  std::mt19937 rng(12345);
  for (int trial = 0; trial < 400; ++trial) {
    const auto groups = random_instance(rng, true);
    const double budget = std::uniform_int_distribution<int>(1, 60)(rng);
    INFO("trial " << trial);
    const Best b = brute_force(groups, budget);
    const Allocation a = allocate_budget(groups, budget, static_cast<int>(budget));  // unit = 1 flop
    REQUIRE(a.feasible == b.feasible);
    if (!b.feasible) continue;
    CHECK(a.flops <= budget);
    CHECK(a.worst == b.worst);
    CHECK(a.quality_sum == Approx(b.sum));
    CHECK(a.quality_sum_upper == Approx(b.sum));
  }
}

TEST_CASE("plan: real-valued costs: max-min exact, mean within the reported bound", "[plan]") {
  std::mt19937 rng(777);
  for (int trial = 0; trial < 400; ++trial) {
    const auto groups = random_instance(rng, false);
    const double budget = std::uniform_real_distribution<double>(1.0, 60.0)(rng);
    INFO("trial " << trial);
    const Best b = brute_force(groups, budget);
    for (const int cells : {7, 100, 5000}) {
      const Allocation a = allocate_budget(groups, budget, cells);
      REQUIRE(a.feasible == b.feasible);
      if (!b.feasible) continue;
      CHECK(a.flops <= budget);
      CHECK(a.worst == b.worst);
      CHECK(a.quality_sum <= b.sum + 1e-9);
      CHECK(a.quality_sum_upper >= b.sum - 1e-9);
      check_gap(groups, budget, cells, a);
    }
  }
}

namespace {

NsMatrix planted(const std::string& name, const std::string& op, int layer, int64_t n, double lo) {
  NsMatrix m;
  m.parameter = name, m.op_type = op, m.layer = layer, m.num_layers = 2, m.kind = "momentum";
  MatrixPart p;
  p.rows = n, p.cols = 2 * n;
  double f2 = 0;
  for (int64_t i = 0; i < n; ++i) {
    p.sigma.push_back(lo * std::pow(1.0 / lo, static_cast<double>(i) / (n - 1)));
    f2 += p.sigma.back() * p.sigma.back();
  }
  p.frobenius = std::sqrt(f2);
  m.parts.push_back(p);
  return m;
}

// Band fraction after k Keller steps, by hand (normalization ε ignored, as the kernel's is tiny).
double band_fraction_by_hand(const MatrixPart& p, int k, const ns::Band& band) {
  int in = 0;
  for (double s : p.sigma) {
    double x = s / p.frobenius;
    for (int i = 0; i < k; ++i) x = 3.4445 * x - 4.775 * x * x * x + 2.0315 * x * x * x * x * x;
    in += x >= band.lo && x <= band.hi;
  }
  return static_cast<double>(in) / p.sigma.size();
}

double keller_flops(int64_t m, int64_t n, int k) {
  const double a = std::min(m, n), b = std::max(m, n);
  return k * (4 * a * a * b + 2 * a * a * a + 3 * a * a + 2 * a * b) + 3 * a * b;
}

}  // namespace

TEST_CASE("plan: planted spectra, by operator type, against enumeration by hand", "[plan]") {
  NsInputs in;
  in.matrices = {planted("l0.q", "q", 0, 24, 1e-4), planted("l1.q", "q", 1, 24, 1e-3),
                 planted("l0.up", "up", 0, 32, 1e-2), planted("l1.up", "up", 1, 32, 3e-2),
                 planted("l0.down", "down", 0, 16, 1e-5)};
  PlanOptions o;
  o.max_steps = 6;
  o.mean_steps = 3.0;
  const PlanResult r = plan_ns_budget(in, o);
  const ns::Band band = ns::builtin_schedule("keller").target_band();
  // The same problem built by hand.
  double budget = 0;
  for (const auto& m : in.matrices) budget += keller_flops(m.parts[0].rows, m.parts[0].cols, 3);
  CHECK(r.budget == Approx(budget));
  std::vector<std::vector<PlanOption>> groups;
  for (const std::vector<int>& members : {std::vector<int>{0, 1}, {2, 3}, {4}}) {
    std::vector<PlanOption> g;
    for (int k = 1; k <= 6; ++k) {
      PlanOption opt{k, 0, 1, 0};
      for (int i : members) {
        const double q = band_fraction_by_hand(in.matrices[i].parts[0], k, band);
        opt.flops += keller_flops(in.matrices[i].parts[0].rows, in.matrices[i].parts[0].cols, k);
        opt.worst = std::min(opt.worst, q);
        opt.quality_sum += q;
      }
      g.push_back(opt);
    }
    groups.push_back(g);
  }
  const Best b = brute_force(groups, budget);
  REQUIRE(b.feasible);
  CHECK(r.allocation.worst == Approx(b.worst));
  CHECK(r.allocation.quality_sum <= b.sum + 1e-9);
  CHECK(r.allocation.quality_sum_upper >= b.sum - 1e-9);
  CHECK(r.allocation.flops <= budget);
  check_gap(groups, budget, o.cells, r.allocation);
  // The config gives every member its group's steps.
  REQUIRE(r.config.parameters.size() == 5);
  for (const auto& p : r.config.parameters) {
    const auto& grp = *std::find_if(r.groups.begin(), r.groups.end(), [&](const PlanGroupResult& g) { return g.name == p.op_type; });
    CHECK(p.setting.steps == grp.options[grp.chosen].steps);
  }
  CHECK(ns_config_problem(ns_config_to_json(r.config)) == "");
  CHECK(r.config.extra["plan"]["worst_quality"].get<double>() == r.allocation.worst);
  // By layer: two groups.
  o.by = PlanGrouping::Layer;
  CHECK(plan_ns_budget(in, o).groups.size() == 2);
}

TEST_CASE("plan: a budget below one step everywhere is refused with its cost", "[plan]") {
  NsInputs in;
  in.matrices = {planted("l0.q", "q", 0, 8, 1e-3)};
  PlanOptions o;
  o.budget = 10.0;
  CHECK_THROWS_WITH(plan_ns_budget(in, o), Catch::Contains("cheapest allocation"));
  o.mean_steps = 2.0;
  CHECK_THROWS_AS(plan_ns_budget(in, o), UsageError);  // both given
  o.budget.reset();
  o.mean_steps = 0.5;
  CHECK_THROWS_AS(plan_ns_budget(in, o), UsageError);
}

TEST_CASE("plan: --cells and --budget limits", "[plan]") {
  const std::vector<std::vector<PlanOption>> groups = {{{1, 10.0, 0.5, 1.0}, {2, 20.0, 0.9, 1.8}},
                                                       {{1, 5.0, 0.2, 0.2}, {2, 9.0, 0.6, 0.6}}};
  for (const int cells : {0, -3, kMaxPlanCells + 1, 2147483647})
    CHECK_THROWS_WITH(allocate_budget(groups, 30.0, cells), Catch::Contains("--cells must be between 1 and 10000000"));
  CHECK(allocate_budget(groups, 30.0, 1).feasible);
  for (const double budget : {std::nan(""), std::numeric_limits<double>::infinity(), 0.0, -5.0})
    CHECK_THROWS_WITH(allocate_budget(groups, budget, 100), Catch::Contains("--budget must be a finite number"));
  // A budget above the most expensive allocation (29 flops): solved exactly, no knapsack.
  for (const double budget : {29.0, 1e300, std::numeric_limits<double>::max()}) {
    const Allocation a = allocate_budget(groups, budget, 7);
    REQUIRE(a.feasible);
    CHECK(a.unconstrained);
    CHECK(a.choice == std::vector<int>{1, 1});
    CHECK(a.worst == 0.6);
    CHECK(a.quality_sum == Approx(2.4));
    CHECK(a.quality_sum_upper == a.quality_sum);
    CHECK(a.dearest_flops == 29.0);
  }
  CHECK_FALSE(allocate_budget(groups, 28.0, 7).unconstrained);
  // Through plan_ns_budget: checked before any work.
  NsInputs in;
  in.matrices = {planted("l0.q", "q", 0, 8, 1e-3)};
  PlanOptions o;
  o.budget = std::nan("");
  CHECK_THROWS_WITH(plan_ns_budget(in, o), Catch::Contains("--budget must be a finite number"));
  o.budget = 1e300;
  o.cells = 300000000;
  CHECK_THROWS_WITH(plan_ns_budget(in, o), Catch::Contains("--cells"));
  o.cells = 50000;
  const PlanResult r = plan_ns_budget(in, o);
  CHECK(r.allocation.unconstrained);
  CHECK(r.config.extra["plan"]["budget_covers_all"] == true);
  CHECK(r.config.extra["plan"]["budget"].get<double>() == 1e300);
}

TEST_CASE("plan: NaN or above-1 lower bounds skip the matrix, naming the record", "[plan]") {
  NsInputs in;
  in.matrices = {planted("l0.q", "q", 0, 8, 1e-3), planted("l0.up", "up", 0, 8, 1e-2),
                 planted("l1.up", "up", 1, 8, 1e-2)};
  in.matrices[1].parts[0].record = "rec-up0";
  in.matrices[2].parts[0].record = "rec-up1";
  QuantileValue v;
  v.q = 0.05;
  v.rel_frob = std::nan("");
  in.matrices[1].parts[0].quantiles = {v};
  v.rel_frob = 1.5;
  in.matrices[2].parts[0].quantiles = {v};
  PlanOptions o;
  o.mean_steps = 3.0;
  const PlanResult r = plan_ns_budget(in, o);
  REQUIRE(r.skipped.size() == 2);
  CHECK_THAT(r.skipped[0], Catch::Contains("l0.up") && Catch::Contains("rec-up0") && Catch::Contains("NaN"));
  CHECK_THAT(r.skipped[1], Catch::Contains("l1.up") && Catch::Contains("rec-up1") && Catch::Contains("above 1"));
  REQUIRE(r.config.parameters.size() == 1);
  CHECK(r.config.parameters[0].name == "l0.q");
  CHECK(std::isfinite(r.config.parameters[0].lower_bound));
  // Nothing usable left: refused, not an empty plan.
  in.matrices.erase(in.matrices.begin());
  CHECK_THROWS_AS(plan_ns_budget(in, o), UsageError);
}
