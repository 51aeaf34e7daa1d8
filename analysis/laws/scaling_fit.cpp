#include "laws/scaling_fit.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <tuple>

#include "core/error.h"
#include "laws/grouping.h"
#include "laws/laws_null.h"
#include "spectra/summary.h"

namespace muspec::analysis {

namespace {

constexpr double kLevelMatch = 1e-9;

/// One matrix of one run over steps: the records of each step.
struct MatrixHistory {
  std::string run, parameter, op_type;
  int64_t layer = -1, num_layers = 0;
  int64_t rows = 0, cols = 0;
  double model_params = 0;
  std::map<int64_t, const SpectrumRecord*> by_step;
};

std::string matrix_key(const SpectrumRecord& r) {
  const std::string& id = r.parameter.empty() ? r.name : r.parameter;
  return r.slice >= 0 ? id + "[" + std::to_string(r.slice) + "]" : id;
}

std::string resolve_kind(const std::vector<SpectrumRecord>& records, const std::string& kind) {
  if (kind != "auto") return kind;
  for (const char* k : {"momentum", "exp_avg"})  // as scan's --kind auto: momentum, else Adam's first moment
    for (const auto& r : records)
      if (r.kind == k) return k;
  return "weight";
}

/// One notice per run name that carries several model sizes (two scans whose runs share a name):
/// they are kept apart as separate runs, never merged.
void note_size_conflicts(const std::map<std::string, std::set<int64_t>>& sizes, ScalingFitResult& result) {
  for (const auto& [run, set] : sizes) {
    if (set.size() < 2) continue;
    std::string list;
    for (int64_t m : set) list += (list.empty() ? "" : ", ") + std::to_string(m);
    result.notices.push_back("run name '" + run + "' appears with " + std::to_string(set.size()) +
                             " model sizes (" + list + " parameters): kept as separate runs, one per size; rename "
                             "the runs if they are different experiments");
  }
}

/// The definition of M a record's params_source names: "total", "non-embedding", or "unknown"
/// (records written before params_source existed).
std::string params_definition(const std::string& source) {
  if (source.empty()) return "unknown";
  const std::string suffix = ":non-embedding";
  const bool non_emb = source.size() >= suffix.size() && source.compare(source.size() - suffix.size(), suffix.size(), suffix) == 0;
  return non_emb ? "non-embedding" : "total";
}

/// Tracks which definitions of M the kept records use; a law across sizes is meaningless when
/// one run counts embeddings and another does not (beta moves ~10 % between the two).
class ParamsCheck {
 public:
  explicit ParamsCheck(std::string wanted) : wanted_(std::move(wanted)) {}
  /// False when the record's definition is not the one asked for (it is then left out).
  bool keep(const SpectrumRecord& r) {
    const std::string def = params_definition(r.params_source);
    if (wanted_ != "auto" && def != "unknown" && def != wanted_) return ++other_, false;
    ++by_source_[r.params_source.empty() ? "(none)" : r.params_source];
    defs_.insert(def);
    return true;
  }
  void finish(ScalingFitResult& result) const {
    std::string list;
    for (const auto& [src, n] : by_source_) list += (list.empty() ? "" : ", ") + std::to_string(n) + " '" + src + "'";
    std::set<std::string> known = defs_;
    known.erase("unknown");
    if (known.size() > 1)
      throw UsageError("the records count model size M in different ways (params_source: " + list +
                       "); one fit needs one definition: rescan with the same --param-count, or choose with "
                       "--params total|non-embedding");
    LawSet& laws = result.laws;
    laws.params_definition = known.empty() ? (defs_.empty() ? "" : "unknown") : *known.begin();
    for (const auto& kv : by_source_) laws.params_sources.push_back(kv.first);
    if (other_)
      result.notices.push_back(std::to_string(other_) + " records count M otherwise than --params " + wanted_ +
                               " and were left out (muspec scan --param-count chooses the count)");
    if (defs_.count("unknown") && !known.empty())
      result.notices.push_back("some records carry no params_source (scans written before it was recorded); their M "
                               "is taken to be " + *known.begin() + " parameters like the others'");
  }

 private:
  std::string wanted_;
  std::map<std::string, size_t> by_source_;
  std::set<std::string> defs_;
  size_t other_ = 0;
};

/// Keeps the records that can enter a fit and files them by (run, model size, matrix).
std::vector<MatrixHistory> collect_histories(const std::vector<SpectrumRecord>& records, const ScalingFitOptions& o,
                                             const std::string& kind, ScalingFitResult& result) {
  std::map<std::tuple<std::string, int64_t, std::string>, MatrixHistory> table;
  std::map<std::string, std::set<int64_t>> sizes_of_run;
  size_t no_size = 0, not_muon = 0, unanalysed = 0, duplicates = 0, negative_step = 0;
  ParamsCheck params(o.params);
  for (const auto& r : records) {
    if (r.kind != kind || r.transform != o.transform) continue;
    if (!o.all_matrices && !r.muon) { ++not_muon; continue; }
    if (r.sigma.empty() && r.summary.quantiles.empty()) { ++unanalysed; continue; }
    if (r.model_params <= 0) { ++no_size; continue; }
    if (r.step < -1) { ++negative_step; continue; }  // -1 = unknown step (one checkpoint)
    if (!params.keep(r)) continue;
    sizes_of_run[r.run].insert(r.model_params);
    MatrixHistory& h = table[{r.run, r.model_params, matrix_key(r)}];
    h.run = r.run, h.parameter = matrix_key(r), h.op_type = r.op_type;
    h.layer = r.layer, h.num_layers = r.num_layers, h.model_params = static_cast<double>(r.model_params);
    h.rows = r.rows, h.cols = r.cols;
    if (!h.by_step.emplace(r.step, &r).second) {
      ++duplicates;
      continue;
    }
    ++result.records_used;
  }
  params.finish(result);
  note_size_conflicts(sizes_of_run, result);
  if (negative_step) result.notices.push_back(std::to_string(negative_step) + " records with a negative training step (below -1, the 'unknown' mark) were left out");
  if (duplicates) result.notices.push_back(std::to_string(duplicates) + " records repeat a (run, matrix, step) already read; the first one is used");
  if (no_size) result.notices.push_back(std::to_string(no_size) + " records without a model size were left out (label runs with a manifest, docs/runs.md)");
  if (unanalysed) result.notices.push_back(std::to_string(unanalysed) + " unanalysed records were left out");
  if (not_muon && !o.all_matrices) result.notices.push_back(std::to_string(not_muon) + " records of non-Muon matrices were left out (--all-matrices keeps them)");
  std::vector<MatrixHistory> out;
  for (auto& kv : table) out.push_back(std::move(kv.second));
  return out;
}

std::vector<double> levels_present(const std::vector<SpectrumRecord>& records) {
  std::set<double> levels;
  for (const auto& r : records)
    for (const auto& q : r.summary.quantiles) levels.insert(q.q);
  return {levels.begin(), levels.end()};
}

}  // namespace

void check_scaling_fit_options(const ScalingFitOptions& o) {
  if (o.scale != "rel_frob" && o.scale != "rel_max" && o.scale != "sigma")
    throw UsageError("--scale: expected rel_frob, rel_max or sigma, got '" + o.scale + "'");
  for (double q : o.quantiles)
    if (!(q >= 0 && q <= 1)) throw UsageError("--quantiles: levels must lie in [0, 1]");
  if (o.fit.bootstrap < 0) throw UsageError("--bootstrap: expected a count >= 0");
  if (o.fit.bootstrap > kMaxBootstrap) throw UsageError("--bootstrap: at most " + std::to_string(kMaxBootstrap) + " replicates");
  if (o.params != "auto" && o.params != "total" && o.params != "non-embedding")
    throw UsageError("--params: expected auto, total or non-embedding, got '" + o.params + "'");
  if (o.null_draws < 0 || o.null_draws == 1 || o.null_draws > 100000)
    throw UsageError("--null-draws: expected 0 (no null) or 2..100000 matrices per shape");
}

namespace {

/// Settles one matrix's series at one level; returns the sample or records why it is unusable.
bool settle_matrix(const MatrixHistory& h, double level, const ScalingFitOptions& o, MatrixSample* sample,
                   std::string* reason) {
  std::vector<int64_t> steps;
  std::vector<double> values;
  for (const auto& [step, rec] : h.by_step) {
    const double v = record_quantile(*rec, level, o.scale);
    if (std::isfinite(v) && v > 0) steps.push_back(step), values.push_back(v);
  }
  if (steps.empty()) {
    *reason = "no positive finite value at this level";
    return false;
  }
  const SettledValue s = settle_series(steps, values, o.burn_in);
  if (!s.settled) {
    *reason = s.reason;
    return false;
  }
  *sample = MatrixSample{h.parameter, s.settled_log_values, s.log_median, s.log_scale, h.rows, h.cols};
  return true;
}

/// The runs of one group at one level, in ascending model size.
std::vector<RunSample> group_runs(const std::vector<MatrixHistory>& histories, const GroupSelector& g, double level,
                                  const ScalingFitOptions& o, ScalingFitResult& result) {
  std::map<std::pair<double, std::string>, RunSample> runs;
  for (const auto& h : histories) {
    if (!g.matches(h.op_type, h.layer, h.num_layers)) continue;
    RunSample& run = runs[{h.model_params, h.run}];
    run.run = h.run, run.model_params = h.model_params;
    MatrixSample sample;
    std::string reason;
    ++result.series;
    if (settle_matrix(h, level, o, &sample, &reason)) {
      run.matrices.push_back(std::move(sample));
    } else {
      run.unsettled.push_back(h.parameter);
      result.unsettled.push_back({h.run, h.parameter, level, reason});
    }
  }
  std::vector<RunSample> out;
  for (auto& kv : runs) out.push_back(std::move(kv.second));
  return out;
}

/// One warning naming the fitted groups whose every run has a single member matrix.
void warn_one_member_groups(ScalingFitResult& result) {
  std::set<std::string> single, fitted;
  for (const auto& f : result.laws.laws) {
    if (f.status != "ok") continue;
    fitted.insert(f.group.name);
    if (f.one_member_per_run) single.insert(f.group.name);
  }
  if (single.empty()) return;
  std::string names;
  size_t shown = 0;
  for (const auto& n : single)
    if (shown++ < 6) names += (names.empty() ? "" : ", ") + n;
  if (single.size() > 6) names += ", ...";
  result.warnings.push_back(std::to_string(single.size()) + " of " + std::to_string(fitted.size()) +
                            " fitted groups have one member matrix per run (" + names +
                            "): their member_sd is 0, so the per-matrix interval is only the group-mean interval "
                            "(a coarser --group puts several matrices in a group)");
}

}  // namespace

double record_quantile(const SpectrumRecord& r, double level, const std::string& scale) {
  for (const auto& q : r.summary.quantiles)
    if (std::fabs(q.q - level) < kLevelMatch)
      return scale == "rel_frob" ? q.rel_frob : scale == "rel_max" ? q.rel_max : q.sigma;
  if (r.sigma.empty()) return std::numeric_limits<double>::quiet_NaN();
  const double s = quantile_linear(r.sigma, level);
  if (scale == "sigma") return s;
  const double denom = scale == "rel_max" ? r.sigma.back() : r.summary.frobenius;
  return denom > 0 ? s / denom : std::numeric_limits<double>::quiet_NaN();
}

ScalingFitResult fit_scaling_laws(const std::vector<SpectrumRecord>& records, const ScalingFitOptions& o) {
  check_scaling_fit_options(o);
  ScalingFitResult result;
  LawSet& laws = result.laws;
  laws.kind = resolve_kind(records, o.kind);
  laws.scale = o.scale;
  laws.grouping = o.grouping;
  laws.burn_in = burn_in_spec(o.burn_in);
  laws.method = o.fit.robust ? "huber" : "wls";
  laws.quantiles = o.quantiles.empty() ? levels_present(records) : o.quantiles;
  const std::vector<MatrixHistory> histories = collect_histories(records, o, laws.kind, result);
  std::vector<std::string> ops;
  for (const auto& h : histories) ops.push_back(h.op_type);
  std::unique_ptr<GaussianNull> null;
  if (o.null_draws > 0 && o.scale != "sigma") {
    null = std::make_unique<GaussianNull>(laws.quantiles, o.scale, o.null_draws, o.null_seed);
    laws.null_model = "gaussian-simulation", laws.null_draws = o.null_draws, laws.null_seed = o.null_seed;
  }
  for (const GroupSelector& g : make_groups(o.grouping, ops))
    for (double level : laws.quantiles) {
      const std::vector<RunSample> runs = group_runs(histories, g, level, o, result);
      laws.laws.push_back(fit_power_law(g, level, o.scale, runs, o.fit));
      compare_with_null(laws.laws.back(), runs, null.get());
    }
  warn_one_member_groups(result);
  return result;
}

}  // namespace muspec::analysis
