#include "report/law_report.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "core/build_config.h"
#include "laws/laws_null.h"
#include "report/scan_report.h"

namespace muspec::analysis {

namespace {

std::string num(double v) { return csv_number(v); }

std::string pad(std::string s, size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

std::string group_cells(const GroupSelector& g) {
  return csv_quote(g.name) + "," + csv_quote(g.op_type) + "," + num(g.depth_lo) + "," + num(g.depth_hi) + "," +
         std::to_string(g.layer_from_end);
}

std::string fit_cells(const FittedLaw& f) {
  const auto& l = f.leave_largest_out;
  std::string s = num(f.beta) + "," + num(f.se_beta) + "," + num(f.beta_ci_lo) + "," + num(f.beta_ci_hi) + ",";
  s += f.has_bootstrap ? num(f.beta_boot_lo) + "," + num(f.beta_boot_hi) : ",";
  s += "," + num(std::exp(f.log_a)) + "," + num(f.log_a) + "," + num(f.se_log_a) + "," + num(f.r2) + "," +
       num(f.residual_scale) + "," + std::to_string(f.dof) + "," + num(f.params_min) + "," + num(f.params_max) + ",";
  s += l.done ? num(l.beta) + "," + num(l.error_log) + "," + num(l.relative_error) + "," + (l.within_interval ? "true" : "false")
              : ",,,";
  s += "," + num(f.member_sd) + "," + (f.one_member_per_run ? "true" : "false") + ",";
  const NullComparison& n = f.null;
  if (!n.done) return s + ",,,,,";
  return s + num(n.beta_null) + "," + num(n.se_beta_null) + "," + num(n.diff) + "," + num(n.diff_ci_lo) + "," +
         num(n.diff_ci_hi) + "," + (n.differs ? "true" : "false");
}

/// "beta - beta_null [CI]", with " *" when the interval excludes 0.
std::string null_cell(const NullComparison& n) {
  if (!n.done) return "-";
  return format_number("%+.3f", n.diff) + " " + format_interval("%+.3f", n.diff_ci_lo, n.diff_ci_hi) +
         (n.differs ? " *" : "");
}

std::string table_row(const FittedLaw& f) {
  std::string row = pad(f.group.name, 26) + pad(quantile_label(f.quantile_level), 6) +
                    pad(std::to_string(f.num_runs) + "/" + std::to_string(f.num_sizes), 7);
  if (f.status != "ok") return row + "refused: " + f.reason + "\n";
  row += pad(format_number("%+.3f", f.beta) + " " + format_interval("%+.3f", f.beta_ci_lo, f.beta_ci_hi), 29);
  row += pad(f.null.done ? format_number("%+.3f", f.null.beta_null) : "-", 8) + pad(null_cell(f.null), 31);
  row += pad(f.has_bootstrap ? format_interval("%+.3f", f.beta_boot_lo, f.beta_boot_hi) : "-", 19);
  row += pad(format_number("%.3g", std::exp(f.log_a)), 10) + pad(format_number("%.3f", f.r2), 7);
  const auto& l = f.leave_largest_out;
  row += l.done ? format_number("%+.1f%%", 100.0 * l.relative_error) + (l.within_interval ? "" : " (outside PI)") : "-";
  return row + "\n";
}

}  // namespace

std::string laws_csv(const LawSet& laws) {
  std::string out =
      "group,op_type,depth_lo,depth_hi,layer_from_end,quantile,scale,kind,status,reason,method,num_runs,num_sizes,"
      "beta,se_beta,beta_ci_lo,beta_ci_hi,beta_boot_lo,beta_boot_hi,a,log_a,se_log_a,r2,residual_scale,dof,"
      "params_min,params_max,llo_beta,llo_error_log,llo_relative_error,llo_within_interval,member_sd,"
      "one_member_per_run,beta_null,se_beta_null,beta_minus_null,beta_minus_null_ci_lo,beta_minus_null_ci_hi,"
      "differs_from_null\n";
  for (const auto& f : laws.laws) {
    out += group_cells(f.group) + "," + num(f.quantile_level) + "," + csv_quote(f.scale) + "," + csv_quote(laws.kind) +
           "," + csv_quote(f.status) + "," + csv_quote(f.reason) + "," + csv_quote(f.method) + "," +
           std::to_string(f.num_runs) + "," + std::to_string(f.num_sizes) + ",";
    out += f.status == "ok" ? fit_cells(f) : std::string(25, ',');
    out += "\n";
  }
  return out;
}

std::string laws_table(const LawSet& laws) {
  std::string out = pad("group", 26) + pad("q", 6) + pad("runs/M", 7) + pad("beta [95% t-CI]", 29) +
                    pad("null", 8) + pad("beta-null [95% CI]", 31) + pad("bootstrap CI", 19) + pad("a", 10) + pad("R^2", 7) + "leave-largest-out\n";
  for (const auto& f : laws.laws) out += table_row(f);
  return out;
}

std::string laws_footer(const LawSet& laws) {
  std::string sources;
  for (const auto& src : laws.params_sources) sources += (sources.empty() ? "" : ", ") + src;
  std::string out = "M: " + (laws.params_definition.empty() ? std::string("unknown") : laws.params_definition) +
                    " parameters (params_source " + (sources.empty() ? "-" : sources) + ")\n";
  const NullTally t = tally_null(laws);
  if (laws.null_model.empty() || t.compared == 0) return out + "no Gaussian null computed\n";
  out += "Gaussian null (" + std::to_string(laws.null_draws) + " simulated matrices per shape, seed " +
         std::to_string(laws.null_seed) + "): " + std::to_string(t.differ) + " of " + std::to_string(t.compared) +
         " laws differ from it ('*': the 95% interval of beta - beta_null excludes 0; " + std::to_string(t.steeper) +
         " steeper, " + std::to_string(t.differ - t.steeper) + " shallower)\n";
  return out;
}

std::string predictions_csv(const std::vector<LawPrediction>& ps, double model_params) {
  std::string out = "group,op_type,depth_lo,depth_hi,layer_from_end,quantile,scale,kind,model_params,predicted,lower,upper,"
                    "level,extrapolated,beta,member_lower,member_upper\n";
  for (const auto& p : ps)
    out += group_cells(p.group) + "," + num(p.quantile_level) + "," + csv_quote(p.scale) + "," + csv_quote(p.kind) + "," +
           num(model_params) + "," + num(p.predicted) + "," + num(p.lower) + "," + num(p.upper) + "," + num(p.level) + "," +
           (p.extrapolated ? "true" : "false") + "," + num(p.beta) + "," + num(p.member_lower) + "," + num(p.member_upper) + "\n";
  return out;
}

std::string predictions_json(const std::vector<LawPrediction>& ps, double model_params, const std::string& laws_path) {
  auto jnum = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  nlohmann::json list = nlohmann::json::array();
  for (const auto& p : ps)
    list.push_back({{"group", {{"name", p.group.name}, {"op_type", p.group.op_type},
                               {"depth", {p.group.depth_lo, p.group.depth_hi}}, {"layer_from_end", p.group.layer_from_end}}},
                    {"quantile", p.quantile_level}, {"scale", p.scale}, {"kind", p.kind},
                    {"predicted", jnum(p.predicted)}, {"lower", jnum(p.lower)}, {"upper", jnum(p.upper)},
                    {"member_lower", jnum(p.member_lower)}, {"member_upper", jnum(p.member_upper)},
                    {"extrapolated", p.extrapolated}, {"beta", jnum(p.beta)}});
  const nlohmann::json doc = {{"format", "muspec.predictions"}, {"version", 1}, {"muspec_version", kVersion},
                              {"laws", laws_path}, {"model_params", model_params},
                              {"level", ps.empty() ? 0.95 : ps.front().level}, {"predictions", list}};
  return doc.dump(2) + "\n";
}

std::string predictions_table(const std::vector<LawPrediction>& ps, double model_params) {
  std::string out = "predicted quantiles at M = " + format_number("%.4g", model_params) + " parameters";
  if (!ps.empty()) out += " (" + format_number("%g", 100 * ps.front().level) + "% prediction intervals)";
  out += "\n" + pad("group", 26) + pad("q", 6) + pad("scale", 10) + pad("predicted", 12) + pad("group mean", 24) +
         pad("one matrix", 24) + "beta\n";
  for (const auto& p : ps)
    out += pad(p.group.name, 26) + pad(quantile_label(p.quantile_level), 6) + pad(p.scale, 10) +
           pad(format_number("%.4g", p.predicted) + (p.extrapolated ? "*" : ""), 12) +
           pad(format_interval("%.4g", p.lower, p.upper), 24) +
           pad(format_interval("%.4g", p.member_lower, p.member_upper), 24) + format_number("%+.3f", p.beta) + "\n";
  if (!ps.empty())
    out += "'*': extrapolated beyond the fitted model sizes; group mean: interval of the mean over a group's matrices; "
           "one matrix: interval of a single matrix (what recommend plans each layer for)\n";
  return out;
}

}  // namespace muspec::analysis
