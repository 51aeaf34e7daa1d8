#include "configs/recommend.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <tuple>

#include "core/error.h"
#include "laws/burn_in.h"
#include "ns/quality.h"
#include "configs/precision_check.h"
#include "report/scan_report.h"
#include "ns/catalog.h"
#include "ns/design.h"
#include "ns/quality.h"
#include "ns/scalar_map.h"

namespace muspec {

namespace {

// Display order of operator types inside a layer (attention, then MLP).
int op_rank(const std::string& op) {
  static const std::vector<std::string> order = {"q", "k", "v", "qkv", "o", "gate", "up", "gate_up", "down"};
  const auto it = std::find(order.begin(), order.end(), op);
  return static_cast<int>(it - order.begin());
}

bool usable(const SpectrumRecord& r) {
  return r.muon && r.transform == "none" && r.nonfinite == 0 &&
         (!r.sigma.empty() || !r.summary.quantiles.empty()) && r.summary.frobenius > 0.0;
}

// The kind `auto` picks for a parameter whose records have these kinds.
std::string auto_kind(const std::set<std::string>& kinds) {
  for (const char* k : {"momentum", "exp_avg", "weight"})
    if (kinds.count(k)) return k;
  return *kinds.begin();
}

std::string choose_run(const std::vector<const SpectrumRecord*>& recs, const std::string& origin,
                       const std::string& wanted) {
  std::set<std::string> runs;
  for (const auto* r : recs) runs.insert(r->run);
  std::string list;
  for (const auto& r : runs) list += (list.empty() ? "" : ", ") + (r.empty() ? std::string("\"\"") : r);
  if (!wanted.empty()) {
    if (!runs.count(wanted)) throw UsageError(origin + ": no Muon matrices of run '" + wanted + "' (runs: " + list + ")");
    return wanted;
  }
  if (runs.size() > 1)
    throw UsageError(origin + ": holds Muon matrices of several runs (" + list + "); choose one with --run");
  return *runs.begin();
}

MatrixPart part_of(const SpectrumRecord& r) {
  MatrixPart p;
  p.record = r.name;
  p.file = r.file, p.tensor = r.tensor, p.slice = r.slice;
  p.rows = r.rows;
  p.cols = r.cols;
  p.sigma = r.sigma;
  p.frobenius = r.summary.frobenius;
  p.quantiles = r.summary.quantiles;
  return p;
}

// Records of one parameter at the chosen kind and step, or the reason there are none.
std::vector<const SpectrumRecord*> pick_records(const std::vector<const SpectrumRecord*>& recs,
                                                const NsInputSelection& sel, std::string* why) {
  std::set<std::string> kinds;
  for (const auto* r : recs) kinds.insert(r->kind);
  const std::string kind = sel.kind == "auto" ? auto_kind(kinds) : sel.kind;
  int64_t step = -2;
  for (const auto* r : recs)
    if (r->kind == kind) step = sel.step ? *sel.step : std::max(step, r->step);
  std::vector<const SpectrumRecord*> out;
  for (const auto* r : recs)
    if (r->kind == kind && r->step == step) out.push_back(r);
  if (out.empty())
    *why = "no " + kind + " record" + (sel.step ? " at step " + std::to_string(*sel.step) : std::string());
  return out;
}

}  // namespace

NsInputs select_ns_inputs(const SpectraFile& file, const std::string& origin, const NsInputSelection& sel) {
  NsInputs in;
  std::vector<const SpectrumRecord*> cand;
  for (const auto& r : file.records) {
    if (usable(r)) cand.push_back(&r);
    else if (r.muon && r.transform == "none") in.skipped.push_back(r.name + ": not analysed (non-finite values or no spectrum)");
  }
  if (cand.empty()) throw UsageError(origin + ": no analysed Muon matrices (muon = true) in the file");
  const std::string run = choose_run(cand, origin, sel.run);
  std::map<std::string, std::vector<const SpectrumRecord*>> by_param;
  for (const auto* r : cand)
    if (r->run == run) by_param[r->parameter].push_back(r);
  std::map<std::string, int> kinds_used;
  std::set<int64_t> steps_used;
  for (const auto& [param, recs] : by_param) {
    std::string why;
    const auto picked = pick_records(recs, sel, &why);
    if (picked.empty()) {
      in.skipped.push_back(param + ": " + why);
      continue;
    }
    NsMatrix m;
    const SpectrumRecord& r0 = *picked.front();
    m.parameter = param, m.op_type = r0.op_type, m.kind = r0.kind, m.run = r0.run;
    m.layer = r0.layer, m.num_layers = r0.num_layers, m.step = r0.step, m.rel_depth = r0.rel_depth;
    m.transposed = r0.transposed;
    for (const auto* r : picked) m.parts.push_back(part_of(*r));
    if (!sel.step && !sel.latest_only) {
      std::map<int64_t, std::vector<MatrixPart>> by_step;
      for (const auto* r : recs)
        if (r->kind == r0.kind && r->step != r0.step) by_step[r->step].push_back(part_of(*r));
      m.earlier.assign(by_step.begin(), by_step.end());
    }
    ++kinds_used[m.kind];
    steps_used.insert(m.step);
    in.matrices.push_back(std::move(m));
  }
  if (in.matrices.empty()) throw UsageError(origin + ": no Muon parameter has a record of the requested kind/step");
  std::sort(in.matrices.begin(), in.matrices.end(), [](const NsMatrix& a, const NsMatrix& b) {
    if (a.layer != b.layer) return a.layer < b.layer;
    if (op_rank(a.op_type) != op_rank(b.op_type)) return op_rank(a.op_type) < op_rank(b.op_type);
    return a.parameter < b.parameter;
  });
  std::string kinds, steps;
  for (const auto& [k, n] : kinds_used) kinds += (kinds.empty() ? "" : ", ") + k + " (" + std::to_string(n) + ")";
  for (const int64_t s : steps_used) steps += (steps.empty() ? "" : ", ") + std::to_string(s);
  in.selection_note = "run '" + run + "'; kind " + kinds + "; step " + steps +
                      (sel.step ? "" : sel.latest_only ? " (latest per parameter)" : " (latest; the lower bound over the settled checkpoints)");
  return in;
}

std::optional<double> rel_frob_quantile(const MatrixPart& part, double q) {
  for (const QuantileValue& v : part.quantiles)
    if (std::abs(v.q - q) <= 1e-12) return v.rel_frob;
  if (part.sigma.empty() || !(part.frobenius > 0.0)) return std::nullopt;
  return quantile_linear(part.sigma, q) / part.frobenius;
}

// ---------------------------------------------------------------- ScheduleRule
ScheduleRule::ScheduleRule(const std::string& family, std::optional<ns::Band> band, int max_steps)
    : family_(family), designed_(family == "designed"), max_steps_(max_steps) {
  if (max_steps < 1 || max_steps > 99) throw UsageError("--max-steps must be between 1 and 99");
  if (!designed_) schedule_ = ns::resolve_schedule(family);
  band_ = band ? *band : designed_ ? ns::default_band(ns::Family::Converging) : schedule_.target_band();
}

namespace {

ns::Schedule designed_schedule(double lower, int steps) {
  ns::DesignOptions d;
  d.lower = std::clamp(lower, 1e-12, 0.999);
  d.upper = 1.0;
  d.steps = steps;
  return ns::design_schedule(d).to_schedule();
}

}  // namespace

std::string lower_bound_problem(double lower) {
  if (std::isnan(lower)) return "the lower bound is NaN";
  if (std::isinf(lower)) return "the lower bound is infinite";
  if (lower > 1.0 + kLowerBoundTolerance)
    return "the lower bound " + std::to_string(lower) + " is above 1 (normalized singular values never exceed 1)";
  return {};
}

ScheduleRule::Choice ScheduleRule::choose_steps(double lower, int steps) const {
  const ns::Schedule s = designed_ ? designed_schedule(lower, steps) : schedule_;
  Choice c;
  c.setting = setting_from_schedule(s, steps);
  c.met = lower > 0.0 && ns::covers(s, steps, std::min(lower, 1.0), band_);
  c.image = ns::map_image(s, steps, ns::Interval{std::max(std::min(lower, 1.0), 0.0), 1.0});
  return c;
}

ScheduleRule::Choice ScheduleRule::choose(double lower) const {
  const std::string problem = lower_bound_problem(lower);
  if (!problem.empty()) throw UsageError("cannot choose NS steps: " + problem);
  lower = std::min(lower, 1.0);  // only rounding (<= kLowerBoundTolerance) is left above 1
  for (int k = 1; k <= max_steps_ && lower > 0.0; ++k)
    if (Choice c = choose_steps(lower, k); c.met) return c;
  return choose_steps(lower, max_steps_);  // not met: max_steps steps
}

// ---------------------------------------------------------------- recommend
void check_recommend_options(const RecommendOptions& o) {
  if (!(o.quantile >= 0.0 && o.quantile <= 1.0)) throw UsageError("--quantile must lie in [0, 1]");
  if (!(o.margin > 0.0) || !std::isfinite(o.margin)) throw UsageError("--margin must be a positive number");
  analysis::parse_burn_in(o.burn_in);  // a bad --burn-in is a usage error before any work
  if (!(o.fragile_ratio >= 1.0) || !std::isfinite(o.fragile_ratio)) throw UsageError("--fragile-ratio must be at least 1");
}

std::optional<double> parameter_lower_bound(const NsMatrix& m, const RecommendOptions& o) {
  std::optional<double> lo;
  for (const MatrixPart& p : m.parts) {
    const auto v = rel_frob_quantile(p, o.quantile);
    if (!v) return std::nullopt;
    if (std::isnan(*v)) return std::numeric_limits<double>::quiet_NaN();  // std::min would drop it
    lo = lo ? std::min(*lo, *v) : *v;
  }
  if (lo) *lo /= o.margin;
  return lo;
}

std::string lower_bound_record(const NsMatrix& m, const RecommendOptions& o) {
  // The part whose quantile is bad (NaN, or the one that made the minimum), else the first.
  const MatrixPart* pick = &m.parts.front();
  double best = std::numeric_limits<double>::infinity();
  for (const MatrixPart& p : m.parts) {
    const auto v = rel_frob_quantile(p, o.quantile);
    if (!v) continue;
    if (std::isnan(*v)) return "'" + p.record + "'";
    if (*v < best) best = *v, pick = &p;
  }
  return "'" + pick->record + "'";
}

namespace {

/// The lower bound over the run's checkpoints: each checkpoint's ℓ; the settled ones by fit's
/// burn-in rule (on log ℓ), else those in the last half of the step range; their minimum.
/// Without earlier checkpoints, the latest ℓ. Fills the per-checkpoint part of `stab`.
std::optional<double> run_lower_bound(const NsMatrix& m, const RecommendOptions& o, NsStability& stab) {
  const auto latest = parameter_lower_bound(m, o);
  if (!latest) return latest;
  std::vector<int64_t> steps;
  std::vector<double> lows;
  for (const auto& [step, parts] : m.earlier) {
    NsMatrix one;
    one.parts = parts;
    const auto l = parameter_lower_bound(one, o);
    if (l && *l > 0 && std::isfinite(*l)) steps.push_back(step), lows.push_back(*l);
  }
  stab.lower_bound_from = "latest";
  stab.steps = {m.step}, stab.lower_bounds = {*latest};
  if (steps.empty() || !(*latest > 0) || !std::isfinite(*latest)) return latest;
  steps.push_back(m.step), lows.push_back(*latest);
  const analysis::SettledValue sv = analysis::settle_series(steps, lows, analysis::parse_burn_in(o.burn_in));
  // Never settled: the last half of the run (its early checkpoints are burn-in by any rule).
  const double from = sv.settled ? static_cast<double>(sv.burn_in_end_step) : 0.5 * static_cast<double>(steps.back());
  stab.lower_bound_from = sv.settled ? "settled" : "last-half";
  stab.steps.clear(), stab.lower_bounds.clear();
  double lo = *latest;
  for (size_t i = 0; i < steps.size(); ++i)
    if (static_cast<double>(steps[i]) >= from) {
      stab.steps.push_back(steps[i]), stab.lower_bounds.push_back(lows[i]);
      lo = std::min(lo, lows[i]);
    }
  return lo;
}

/// Steps each checkpoint alone would need, and how close ℓ sits to the chosen steps' threshold.
void fill_stability(NsStability& stab, double lower, const ScheduleRule& rule, int chosen, const RecommendOptions& o) {
  for (const double l : stab.lower_bounds) stab.needed.push_back(rule.choose(l).setting.steps);
  if (!rule.designed())
    if (const auto t = ns::coverage_lower(rule.schedule(), chosen, rule.band()); t && *t > 0) {
      stab.threshold = *t;
      stab.threshold_ratio = lower / *t;
      stab.fragile = *stab.threshold_ratio < o.fragile_ratio;
    }
}

/// Runs the chosen setting at the trainer's precision on every measured matrix of the parameter
/// and adds steps (same family) until every direction at or above the lower bound lands in the
/// band promised at that precision, or max_steps is reached. Updates `c` to the final choice.
NsVerification verify_at_precision(const NsMatrix& m, const std::vector<int64_t>& steps, double lower, const ScheduleRule& rule,
                                   const ns::Band& band, const RecommendOptions& o, ScheduleRule::Choice& c,
                                   std::vector<std::string>* notes) {
  std::vector<const MatrixPart*> parts;  // the latest step's matrices and those of the settled checkpoints
  for (const MatrixPart& part : m.parts) parts.push_back(&part);
  for (const auto& [step, earlier] : m.earlier)
    if (std::find(steps.begin(), steps.end(), step) != steps.end())
      for (const MatrixPart& part : earlier) parts.push_back(&part);
  std::vector<std::tuple<std::vector<double>, int64_t, int64_t>> mats;
  for (const MatrixPart* pp : parts) {
    const MatrixPart& part = *pp;
    int64_t rows = 0, cols = 0;
    std::string why = part.record.find(':') != std::string::npos ? "a part of a fused tensor is not re-read" : "";
    if (why.empty())
      if (auto g = load_matrix({part.file, part.tensor, part.slice}, &rows, &cols, &why)) mats.emplace_back(std::move(*g), rows, cols);
    if (!why.empty()) notes->push_back(m.parameter + " (record '" + part.record + "'): not verified: " + why);
  }
  NsVerification v;
  v.matrices = static_cast<int64_t>(mats.size());
  for (int k = c.setting.steps; k <= o.max_steps && !mats.empty(); ++k) {
    const ScheduleRule::Choice at_k = k == c.setting.steps ? c : rule.choose_steps(lower, k);
    const ns::Schedule s = schedule_from_setting(at_k.setting);
    GainRange g;
    for (const auto& [x, rows, cols] : mats) g.add(gain_range(s, k, o.precision, x, rows, cols, lower));
    v = NsVerification{g.min_gain, g.max_gain, std::min(g.min_gain - band.lo, band.hi - g.max_gain), k - c.setting.steps,
                       g.inside(band), v.matrices, g.realizations};
    if (v.passed) {
      c = at_k;
      break;
    }
  }
  return v;
}

}  // namespace

std::optional<double> settled_lower_bound(const NsMatrix& m, const RecommendOptions& o, NsStability& stab) {
  return run_lower_bound(m, o, stab);
}

NsConfig recommend_measured(const NsInputs& inputs, const RecommendOptions& o, std::vector<std::string>* skipped) {
  check_recommend_options(o);
  const ScheduleRule rule(o.family, o.band, o.max_steps);
  NsConfig cfg;
  cfg.provenance.mode = "measured";
  cfg.provenance.quantile = o.quantile;
  cfg.provenance.family = o.family;
  cfg.provenance.band = rule.band();
  cfg.provenance.margin = o.margin;
  cfg.provenance.precision = ns::precision_name(o.precision);
  cfg.provenance.precision_band = band_at_precision(rule.band(), o.precision);
  cfg.provenance.verified = o.verify;
  const NsSetting uniform = default_ns_setting();
  for (const NsMatrix& m : inputs.matrices) {
    NsStability stab;
    const auto lower = run_lower_bound(m, o, stab);
    if (!lower) {
      if (skipped) skipped->push_back(m.parameter + ": no quantile at level " + std::to_string(o.quantile));
      continue;
    }
    if (const std::string why = lower_bound_problem(*lower); !why.empty()) {
      if (skipped) skipped->push_back(m.parameter + " (record " + lower_bound_record(m, o) + "): " + why);
      continue;
    }
    ScheduleRule::Choice c = rule.choose(*lower);
    NsConfigParameter p;
    if (c.met && *lower < precision_floor(o.precision) && !o.verify) {
      c.met = false;  // rounding at this precision decides such small values (docs/ns-config.md)
      cfg.notes.push_back(m.parameter + ": lower bound " + format_number("%.3g", *lower) + " is under the " + ns::precision_name(o.precision) +
                          " floor " + format_number("%.3g", precision_floor(o.precision)) +
                          ": no step count is promised without --verify (which checks the measured matrices)");
    }
    if (o.verify && c.met) {
      const NsVerification v = verify_at_precision(m, stab.steps, *lower, rule, *cfg.provenance.precision_band, o, c, &cfg.notes);
      if (v.matrices > 0) p.verified = v;
      if (v.matrices > 0 && !v.passed) {
        c.met = false;
        cfg.notes.push_back(m.parameter + ": at " + cfg.provenance.precision + " no step count up to --max-steps keeps every direction in the band");
      }
    }
    p.name = m.parameter;
    p.setting = c.setting;
    p.op_type = m.op_type;
    p.group = m.op_type;
    p.layer = m.layer;
    p.lower_bound = *lower;
    p.bound_kind = "measured";
    p.requirement_met = c.met;
    p.image = c.image;
    p.shape = {m.parts.front().rows, m.parts.front().cols};
    p.matrices = static_cast<int64_t>(m.parts.size());
    if (m.transposed) p.storage = "conv1d";
    fill_stability(stab, *lower, rule, c.setting.steps, o);
    p.stability = stab;
    double f = 0.0, f0 = 0.0;
    for (const MatrixPart& part : m.parts) {
      f += setting_flops(c.setting, part.rows, part.cols);
      f0 += setting_flops(uniform, part.rows, part.cols);
    }
    p.flops = f;
    p.default_flops = f0;
    cfg.parameters.push_back(std::move(p));
  }
  return cfg;
}

}  // namespace muspec
