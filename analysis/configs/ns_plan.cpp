#include "configs/ns_plan.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>

#include "core/error.h"
#include "configs/precision_check.h"
#include "ns/catalog.h"
#include "ns/design.h"
#include "ns/quality.h"
#include "ns/scalar_map.h"

namespace muspec {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Each group's cheapest option with worst ≥ t (index into the group's options), or -1.
std::vector<int> cheapest_reaching(const std::vector<std::vector<PlanOption>>& groups, double t, double* total) {
  std::vector<int> pick(groups.size(), -1);
  *total = 0.0;
  for (size_t g = 0; g < groups.size(); ++g) {
    for (size_t o = 0; o < groups[g].size(); ++o)
      if (groups[g][o].worst >= t && (pick[g] < 0 || groups[g][o].flops < groups[g][pick[g]].flops))
        pick[g] = static_cast<int>(o);
    if (pick[g] < 0) {
      *total = kInf;
      return pick;
    }
    *total += groups[g][pick[g]].flops;
  }
  return pick;
}

// Multiple-choice knapsack over integer weights: max Σ value with Σ weight ≤ cells, one option
// per group among `allowed`. Returns the best value (-inf when infeasible) and, when `choice`
// is given, the chosen option per group.
double knapsack(const std::vector<std::vector<PlanOption>>& groups, const std::vector<std::vector<char>>& allowed,
                double unit, int cells, bool round_up, std::vector<int>* choice) {
  const size_t G = groups.size();
  std::vector<double> dp(cells + 1, 0.0), next(cells + 1);
  std::vector<std::vector<uint8_t>> arg(choice ? G : 0, std::vector<uint8_t>(choice ? cells + 1 : 0));
  std::vector<std::vector<int>> weight(G);
  for (size_t g = 0; g < G; ++g)
    for (const PlanOption& o : groups[g]) {
      const double w = o.flops / unit;
      weight[g].push_back(static_cast<int>(std::min<double>(cells + 1.0, round_up ? std::ceil(w) : std::floor(w))));
    }
  for (size_t g = 0; g < G; ++g) {
    std::fill(next.begin(), next.end(), -kInf);
    for (size_t o = 0; o < groups[g].size(); ++o) {
      if (!allowed[g][o]) continue;
      const int w = weight[g][o];
      for (int c = w; c <= cells; ++c) {
        const double v = dp[c - w] + groups[g][o].quality_sum;
        if (v > next[c] + 1e-12 * std::abs(v)) {
          next[c] = v;
          if (choice) arg[g][c] = static_cast<uint8_t>(o);
        }
      }
    }
    dp.swap(next);
  }
  if (!(dp[cells] > -kInf)) return -kInf;
  if (choice) {
    choice->assign(G, 0);
    int c = cells;
    for (size_t g = G; g-- > 0;) {
      (*choice)[g] = arg[g][c];
      c -= weight[g][(*choice)[g]];
    }
  }
  return dp[cells];
}

void summarize(const std::vector<std::vector<PlanOption>>& groups, Allocation& a) {
  a.flops = a.quality_sum = 0.0;
  a.worst = kInf;
  for (size_t g = 0; g < groups.size(); ++g) {
    const PlanOption& o = groups[g][a.choice[g]];
    a.flops += o.flops;
    a.quality_sum += o.quality_sum;
    a.worst = std::min(a.worst, o.worst);
  }
}

}  // namespace

void check_plan_limits(double budget, int cells) {
  if (cells < 1 || cells > kMaxPlanCells)
    throw UsageError("--cells must be between 1 and " + std::to_string(kMaxPlanCells) + " (got " +
                     std::to_string(cells) + ")");
  if (!(budget > 0.0) || !std::isfinite(budget)) {
    char buf[120];
    std::snprintf(buf, sizeof buf, "--budget must be a finite number of flops above 0 (got %g)", budget);
    throw UsageError(buf);
  }
}

Allocation allocate_budget(const std::vector<std::vector<PlanOption>>& groups, double budget, int cells) {
  check_plan_limits(budget, cells);
  if (groups.empty()) throw UsageError("allocate_budget: no groups");
  Allocation a;
  std::vector<double> levels;
  for (const auto& g : groups) {
    if (g.empty()) throw UsageError("allocate_budget: a group has no options");
    double cheapest = kInf, dearest = 0.0;
    for (const PlanOption& o : g) {
      if (!(o.flops >= 0.0) || !std::isfinite(o.flops) || std::isnan(o.worst) || std::isnan(o.quality_sum))
        throw UsageError("allocate_budget: an option has a non-finite cost or a NaN quality");
      levels.push_back(o.worst), cheapest = std::min(cheapest, o.flops), dearest = std::max(dearest, o.flops);
    }
    a.cheapest_flops += cheapest;
    a.dearest_flops += dearest;
  }
  if (!(a.cheapest_flops <= budget)) return a;
  // 1. max-min: the largest level whose cheapest allocation fits (feasibility is monotone).
  std::sort(levels.begin(), levels.end());
  levels.erase(std::unique(levels.begin(), levels.end()), levels.end());
  size_t lo = 0, hi = levels.size() - 1;  // levels[lo] is feasible: it is the global minimum
  while (lo < hi) {
    const size_t mid = (lo + hi + 1) / 2;
    double total = 0.0;
    cheapest_reaching(groups, levels[mid], &total);
    if (total <= budget) lo = mid;
    else hi = mid - 1;
  }
  const double level = levels[lo];
  double total = 0.0;
  a.choice = cheapest_reaching(groups, level, &total);
  a.feasible = true;
  summarize(groups, a);
  if (budget >= a.dearest_flops) {
    // Every allocation fits: the groups are independent, so each takes its best option among
    // those reaching the level (ties: the cheaper). Exact, no discretization, gap 0.
    for (size_t g = 0; g < groups.size(); ++g) {
      int best = a.choice[g];
      for (size_t o = 0; o < groups[g].size(); ++o) {
        const PlanOption &c = groups[g][o], &b = groups[g][best];
        if (c.worst >= level && (c.quality_sum > b.quality_sum || (c.quality_sum == b.quality_sum && c.flops < b.flops)))
          best = static_cast<int>(o);
      }
      a.choice[g] = best;
    }
    summarize(groups, a);
    a.quality_sum_upper = a.quality_sum;
    a.unconstrained = true;
    return a;
  }
  // 2. max mean among options reaching the level (knapsack, costs rounded up: feasible).
  std::vector<std::vector<char>> allowed(groups.size());
  for (size_t g = 0; g < groups.size(); ++g)
    for (const PlanOption& o : groups[g]) allowed[g].push_back(o.worst >= level);
  const double unit = budget / cells;
  std::vector<int> dp_choice;
  const double best = knapsack(groups, allowed, unit, cells, true, &dp_choice);
  if (best > a.quality_sum) {
    Allocation b = a;
    b.choice = dp_choice;
    summarize(groups, b);
    if (b.flops <= budget && b.worst >= level) a = b;
  }
  // Relaxation (costs rounded down): an upper bound on the optimum at this level.
  a.quality_sum_upper = std::max(a.quality_sum, knapsack(groups, allowed, unit, cells, false, nullptr));
  return a;
}

// ---------------------------------------------------------------- plan
namespace {

std::string group_name(const NsMatrix& m, PlanGrouping by) {
  if (by == PlanGrouping::OpType) return m.op_type;
  return m.layer >= 0 ? "layer " + std::to_string(m.layer) : "outside blocks";
}

ns::Schedule designed_for(double lower, int steps) {
  ns::DesignOptions d;
  d.lower = std::clamp(lower, 1e-12, 0.999);
  d.steps = steps;
  return ns::design_schedule(d).to_schedule();
}

// Band fraction of the worst part of one matrix after k steps.
double matrix_quality(const NsMatrix& m, const ns::Schedule& s, int k, const ns::Band& band) {
  double q = 1.0;
  for (const MatrixPart& p : m.parts)
    q = std::min(q, ns::evaluate_spectrum(s, k, p.sigma, band, p.frobenius).band_fraction);
  return q;
}

double matrix_flops(const NsMatrix& m, const NsSetting& s) {
  double f = 0.0;
  for (const MatrixPart& p : m.parts) f += setting_flops(s, p.rows, p.cols);
  return f;
}

double budget_from_mean_steps(const std::vector<PlanGroupResult>& groups, double k, int max_steps) {
  if (!(k >= 1.0 && k <= max_steps)) throw UsageError("--mean-steps must lie in [1, --max-steps]");
  const int k0 = static_cast<int>(std::floor(k));
  const int k1 = std::min(k0 + 1, max_steps);
  double b = 0.0;
  for (const auto& g : groups)
    b += g.options[k0 - 1].flops + (k - k0) * (g.options[k1 - 1].flops - g.options[k0 - 1].flops);
  return b;
}

nlohmann::json plan_summary_json(const PlanResult& r, const PlanOptions& o) {
  const Allocation& a = r.allocation;
  const double n = static_cast<double>(r.matrices);
  nlohmann::json groups = nlohmann::json::array();
  for (const PlanGroupResult& g : r.groups) {
    const PlanOption& opt = g.options[g.chosen];
    groups.push_back({{"group", g.name}, {"matrices", g.members.size()}, {"steps", opt.steps}, {"flops", opt.flops},
                      {"worst_quality", opt.worst}, {"mean_quality", opt.quality_sum / g.members.size()}});
  }
  return {{"by", o.by == PlanGrouping::OpType ? "optype" : "layer"},
          {"quality", "band_fraction: share of a matrix's singular values whose NS output lands in the band"},
          {"budget", r.budget},
          {"mean_steps", o.mean_steps ? nlohmann::json(*o.mean_steps) : nlohmann::json(nullptr)},
          {"flops", a.flops},
          {"worst_quality", a.worst},
          {"mean_quality", a.quality_sum / n},
          {"mean_quality_upper_bound", a.quality_sum_upper / n},
          {"optimality_gap", (a.quality_sum_upper - a.quality_sum) / n},
          {"budget_cells", o.cells},
          {"budget_covers_all", a.unconstrained},
          {"groups", groups}};
}

}  // namespace

void check_plan_options(const PlanOptions& o) {
  if (o.budget.has_value() == o.mean_steps.has_value()) throw UsageError("plan: give exactly one of --budget or --mean-steps");
  check_plan_limits(o.budget ? *o.budget : 1.0, o.cells);
  if (o.mean_steps && !(*o.mean_steps >= 1.0 && *o.mean_steps <= o.max_steps))
    throw UsageError("--mean-steps must lie in [1, --max-steps]");
}

PlanResult plan_ns_budget(const NsInputs& inputs, const PlanOptions& o) {
  check_plan_options(o);
  const ScheduleRule rule(o.family, o.band, o.max_steps);
  RecommendOptions ro;
  ro.quantile = o.quantile;
  check_recommend_options(ro);
  PlanResult r;
  // Matrices with full spectra, grouped.
  std::map<std::string, size_t> index;
  std::vector<double> lower(inputs.matrices.size(), 0.0);
  for (size_t i = 0; i < inputs.matrices.size(); ++i) {
    const NsMatrix& m = inputs.matrices[i];
    const bool full = std::all_of(m.parts.begin(), m.parts.end(), [](const MatrixPart& p) { return !p.sigma.empty(); });
    const auto lb = parameter_lower_bound(m, ro);
    if (!full || !lb) {
      r.skipped.push_back(m.parameter + ": no stored spectrum (quality needs the singular values)");
      continue;
    }
    if (const std::string why = lower_bound_problem(*lb); !why.empty()) {
      r.skipped.push_back(m.parameter + " (record " + lower_bound_record(m, ro) + "): " + why);
      continue;
    }
    lower[i] = *lb;
    const std::string name = group_name(m, o.by);
    const auto [it, fresh] = index.emplace(name, r.groups.size());
    if (fresh) r.groups.push_back({name, {}, {}, 0});
    r.groups[it->second].members.push_back(i);
  }
  if (r.groups.empty()) throw UsageError("plan: no Muon matrix with a stored spectrum");
  std::vector<std::vector<PlanOption>> problem;
  for (PlanGroupResult& g : r.groups) {
    double group_lower = 1.0;
    for (size_t i : g.members) group_lower = std::min(group_lower, lower[i]);
    for (int k = 1; k <= o.max_steps; ++k) {
      const ns::Schedule s = rule.designed() ? designed_for(group_lower, k) : rule.schedule();
      const NsSetting setting = setting_from_schedule(s, k);
      PlanOption opt{k, 0.0, 1.0, 0.0};
      for (size_t i : g.members) {
        const double q = matrix_quality(inputs.matrices[i], s, k, rule.band());
        opt.flops += matrix_flops(inputs.matrices[i], setting);
        opt.worst = std::min(opt.worst, q);
        opt.quality_sum += q;
      }
      g.options.push_back(opt);
    }
    problem.push_back(g.options);
    r.matrices += static_cast<int64_t>(g.members.size());
  }
  r.budget = o.budget ? *o.budget : budget_from_mean_steps(r.groups, *o.mean_steps, o.max_steps);
  r.allocation = allocate_budget(problem, r.budget, o.cells);
  if (!r.allocation.feasible) {
    char buf[200];
    std::snprintf(buf, sizeof buf, "plan: budget %.6g flops is below the cheapest allocation (1 step everywhere): %.6g flops",
                  r.budget, r.allocation.cheapest_flops);
    throw UsageError(buf);
  }
  for (size_t g = 0; g < r.groups.size(); ++g) r.groups[g].chosen = r.allocation.choice[g];
  // The config: each matrix gets its group's steps.
  NsConfig& c = r.config;
  c.provenance.mode = "plan";
  c.provenance.quantile = o.quantile;
  c.provenance.family = o.family;
  c.provenance.band = rule.band();
  c.provenance.precision = ns::precision_name(o.precision);
  c.provenance.precision_band = band_at_precision(rule.band(), o.precision);
  const NsSetting uniform = default_ns_setting();
  std::vector<std::pair<size_t, NsConfigParameter>> entries;
  for (const PlanGroupResult& g : r.groups) {
    const int k = g.options[g.chosen].steps;
    double group_lower = 1.0;
    for (size_t i : g.members) group_lower = std::min(group_lower, lower[i]);
    const ns::Schedule s = rule.designed() ? designed_for(group_lower, k) : rule.schedule();
    for (size_t i : g.members) {
      const NsMatrix& m = inputs.matrices[i];
      NsConfigParameter p;
      p.name = m.parameter;
      p.setting = setting_from_schedule(s, k);
      p.op_type = m.op_type;
      p.group = g.name;
      p.layer = m.layer;
      p.lower_bound = lower[i];
      p.bound_kind = "measured";
      // Under the precision's floor rounding decides (recommend's rule, docs/ns-config.md "Precision").
      p.requirement_met = ns::covers(s, k, std::min(lower[i], 1.0), rule.band()) && lower[i] >= precision_floor(o.precision);
      p.image = ns::map_image(s, k, ns::Interval{lower[i], 1.0});
      p.shape = {m.parts.front().rows, m.parts.front().cols};
      p.matrices = static_cast<int64_t>(m.parts.size());
      if (m.transposed) p.storage = "conv1d";
      p.flops = matrix_flops(m, p.setting);
      p.default_flops = matrix_flops(m, uniform);
      entries.emplace_back(i, std::move(p));
    }
  }
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& e : entries) c.parameters.push_back(std::move(e.second));
  c.extra["plan"] = plan_summary_json(r, o);
  return r;
}

}  // namespace muspec
