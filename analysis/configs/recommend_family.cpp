#include "configs/recommend_family.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "core/error.h"
#include "configs/precision_check.h"
#include "report/scan_report.h"
#include "spectra/summary.h"
#include "ns/spectral_simulate.h"

namespace muspec {

using ns::SpectralMap;

double family_error_above_quantile(const SpectralMap& m, const std::vector<double>& sigma, double quantile,
                                   double tolerance) {
  const ns::FamilyEvaluation e = ns::evaluate_family(m, sigma, tolerance);  // e.sigma ascending
  const double at = quantile_linear(e.sigma, quantile);
  double worst = 0.0;
  for (size_t i = 0; i < e.sigma.size(); ++i)
    if (e.sigma[i] >= at) worst = std::max(worst, e.rel_error[i]);
  return worst;
}

namespace {

// The checkpoints a recommendation rests on: the latest and the settled ones `stab` names.
std::vector<std::pair<int64_t, const std::vector<MatrixPart>*>> used_checkpoints(const NsMatrix& m, const NsStability& stab) {
  std::vector<std::pair<int64_t, const std::vector<MatrixPart>*>> out;
  for (const auto& [step, parts] : m.earlier)
    if (std::find(stab.steps.begin(), stab.steps.end(), step) != stab.steps.end()) out.emplace_back(step, &parts);
  out.emplace_back(m.step, &m.parts);
  return out;
}

// "" when every part stores its full spectrum, else why not.
std::string full_spectrum_problem(const std::vector<MatrixPart>& parts) {
  for (const MatrixPart& p : parts)
    if (static_cast<int64_t>(p.sigma.size()) != std::min(p.rows, p.cols))
      return "record '" + p.record + "' stores " + std::to_string(p.sigma.size()) + " of the " +
             std::to_string(std::min(p.rows, p.cols)) + " singular values; --power needs the full spectrum "
             "(scan without --values quantiles)";
  return "";
}

// Fewest steps with which every part meets the tolerance; nullopt when none ≤ max_steps does.
std::optional<int> needed_steps(const SpectralMap& m, const std::vector<MatrixPart>& parts, const RecommendOptions& o,
                                double tolerance) {
  if (m.is_identity()) return 0;
  int worst = 1;
  for (const MatrixPart& p : parts) {
    const auto k = ns::min_family_steps(m, p.sigma, o.quantile, tolerance, o.max_steps);
    if (!k) return std::nullopt;
    worst = std::max(worst, *k);
  }
  return worst;
}

SpectralMap with_steps(SpectralMap m, int steps) {
  m.steps = std::max(steps, 1);
  return m;
}

// The scalar map's errors at the chosen steps, worst over every used matrix.
NsFamilyResult predicted_errors(const SpectralMap& m, const std::vector<const MatrixPart*>& parts, const RecommendOptions& o,
                                double tolerance) {
  NsFamilyResult r;
  if (m.is_identity()) return r;
  for (const MatrixPart* p : parts) {
    r.max_rel_error = std::max(r.max_rel_error, family_error_above_quantile(m, p->sigma, o.quantile, tolerance));
    const std::vector<double> out = ns::map_spectrum(m, p->sigma);
    r.matrix_rel_error = std::max(r.matrix_rel_error, ns::scaled_rel_error(out, ns::exact_power(p->sigma, m.power)));
  }
  return r;
}

// --verify: runs the iteration at `f.precision` on every stored matrix and measures each
// direction's value u_iᵀ X v_i against σᵖ; adds steps until the worst direction at or above
// the quantile is within the tolerance. Returns the worst error at the final steps (nullopt when
// no matrix could be read); `steps` and `met` are updated.
std::optional<double> verify_family(const NsMatrix& nm, const std::vector<const MatrixPart*>& parts, const RecommendOptions& o,
                                    const FamilyOptions& f, int& steps, bool& met, std::vector<std::string>* notes) {
  struct Loaded { std::vector<double> g; int64_t rows, cols; double at; std::string label; };
  std::vector<Loaded> mats;
  for (const MatrixPart* p : parts) {
    int64_t rows = 0, cols = 0;
    std::string why = p->record.find(':') != std::string::npos ? "a part of a fused tensor is not re-read" : "";
    std::optional<std::vector<double>> g;
    if (why.empty()) g = load_matrix({p->file, p->tensor, p->slice}, &rows, &cols, &why);
    if (!g) {
      notes->push_back(nm.parameter + " (record '" + p->record + "'): not verified: " + why);
      continue;
    }
    mats.push_back({std::move(*g), rows, cols, quantile_linear(p->sigma, o.quantile), p->record});
  }
  if (mats.empty()) return std::nullopt;
  double worst = 0.0;
  for (int k = steps; k <= o.max_steps; ++k) {
    worst = 0.0;
    const SpectralMap mk = with_steps(f.map, k);
    try {
      for (const Loaded& l : mats)
        for (const ns::FamilyDirection& d : ns::family_directions(mk, f.precision, l.g.data(), l.rows, l.cols, l.label))
          if (d.sigma >= l.at * (1.0 - 1e-12)) worst = std::max(worst, d.rel_error(f.map.power));
    } catch (const NumericalError& e) {  // bf16 coupled Newton can diverge: a finding, not a failure of the run
      met = false;
      notes->push_back(std::string(e.what()) + " with " + std::to_string(k) + " steps; not recommended at this precision");
      return std::nullopt;
    }
    if (worst <= f.tolerance) {
      steps = k;
      return worst;
    }
  }
  met = false;
  notes->push_back(nm.parameter + ": at " + std::string(ns::precision_name(f.precision)) + " no step count up to --max-steps brings every "
                   "direction at or above the quantile within the tolerance (worst " + format_number("%.3g", worst) + ")");
  return worst;
}

NsConfigParameter family_parameter(const NsMatrix& m, const NsStability& stab, double lower, int steps, bool met,
                                   const FamilyOptions& f) {
  NsConfigParameter p;
  p.name = m.parameter;
  p.setting.steps = f.map.is_identity() ? 0 : steps;
  p.op_type = m.op_type;
  p.group = m.op_type;
  p.layer = m.layer;
  p.lower_bound = lower;
  p.bound_kind = "measured";
  p.requirement_met = met;
  p.shape = {m.parts.front().rows, m.parts.front().cols};
  p.matrices = static_cast<int64_t>(m.parts.size());
  if (m.transposed) p.storage = "conv1d";
  p.stability = stab;
  double fl = 0.0, f0 = 0.0;
  const SpectralMap chosen = with_steps(f.map, steps), paper = with_steps(f.map, ns::kPaperSteps);
  for (const MatrixPart& part : m.parts) {
    fl += ns::family_cost(chosen, part.rows, part.cols).flops;
    f0 += ns::family_cost(paper, part.rows, part.cols).flops;
  }
  p.flops = fl;
  p.default_flops = f0;
  return p;
}

}  // namespace

NsConfig recommend_family(const NsInputs& inputs, const RecommendOptions& o, const FamilyOptions& f,
                          std::vector<std::string>* skipped) {
  check_recommend_options(o);
  f.map.validate();
  if (!(f.tolerance > 0.0) || !std::isfinite(f.tolerance)) throw UsageError("--tolerance must be a positive number");
  if (f.input != "momentum" && f.input != "rms_normalized") throw UsageError("--input must be momentum or rms_normalized");
  NsConfig cfg;
  cfg.spectral_map = NsSpectralMapConfig{f.map, f.tolerance, f.input};
  cfg.default_setting.steps = f.map.is_identity() ? 0 : f.map.steps;
  cfg.provenance.mode = "measured";
  cfg.provenance.quantile = o.quantile;
  cfg.provenance.family = f.map.describe();
  cfg.provenance.band = ns::Band{1.0 - f.tolerance, 1.0 + f.tolerance};  // out/σᵖ
  cfg.provenance.margin = o.margin;
  cfg.provenance.precision = ns::precision_name(o.verify ? f.precision : ns::Precision::F64);
  cfg.provenance.verified = o.verify;
  for (const NsMatrix& m : inputs.matrices) {
    NsStability stab;
    const auto lower = settled_lower_bound(m, o, stab);
    if (!lower) {
      if (skipped) skipped->push_back(m.parameter + ": no quantile at level " + std::to_string(o.quantile));
      continue;
    }
    const auto checkpoints = used_checkpoints(m, stab);
    std::string why;
    for (const auto& cp : checkpoints)
      if (why.empty()) why = full_spectrum_problem(*cp.second);
    if (!why.empty()) {
      if (skipped) skipped->push_back(m.parameter + ": " + why);
      continue;
    }
    bool met = true;
    int steps = 0;
    stab.needed.clear();
    for (const auto& cp : checkpoints) {  // same order as stab.steps: ascending, the latest last
      const auto k = needed_steps(f.map, *cp.second, o, f.tolerance);
      stab.needed.push_back(k ? *k : o.max_steps);
      met = met && k.has_value();
      steps = std::max(steps, k.value_or(o.max_steps));
    }
    stab.fragile = std::adjacent_find(stab.needed.begin(), stab.needed.end(), std::not_equal_to<>()) != stab.needed.end();
    std::vector<const MatrixPart*> parts;
    for (const auto& cp : checkpoints)
      for (const MatrixPart& part : *cp.second) parts.push_back(&part);
    NsFamilyResult result;
    if (o.verify && met && !f.map.is_identity())
      result.verified_max_rel_error = verify_family(m, parts, o, f, steps, met, &cfg.notes);
    const auto verified = result.verified_max_rel_error;
    result = predicted_errors(with_steps(f.map, steps), parts, o, f.tolerance);
    result.verified_max_rel_error = verified;
    NsConfigParameter p = family_parameter(m, stab, *lower, steps, met, f);
    p.family = result;
    cfg.parameters.push_back(std::move(p));
  }
  return cfg;
}

}  // namespace muspec
