#include "laws.h"

#include <cmath>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "student_t.h"

namespace muspec::analysis {

namespace {

using nlohmann::json;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }
json pair(double lo, double hi) { return json::array({num(lo), num(hi)}); }

json group_json(const GroupSelector& g) {
  return {{"name", g.name}, {"op_type", g.op_type}, {"depth", pair(g.depth_lo, g.depth_hi)},
          {"layer_from_end", g.layer_from_end}};
}

json run_json(const RunPoint& p) {
  return {{"run", p.run}, {"model_params", num(p.model_params)}, {"log_value", num(p.log_value)},
          {"value", num(std::exp(p.log_value))}, {"log_se", num(p.log_se)}, {"weight", num(p.weight)},
          {"residual", num(p.residual)}, {"matrices", p.matrices}, {"unsettled", p.unsettled},
          {"members", p.members}};
}

json llo_json(const LeaveLargestOut& l) {
  return {{"done", l.done}, {"note", l.note}, {"held_out_params", num(l.held_out_params)},
          {"predicted_log", num(l.predicted_log)}, {"actual_log", num(l.actual_log)},
          {"error_log", num(l.error_log)}, {"relative_error", num(l.relative_error)}, {"beta", num(l.beta)},
          {"within_interval", l.within_interval}};
}

json law_json(const FittedLaw& f) {
  json j = {{"group", group_json(f.group)}, {"quantile", f.quantile_level}, {"scale", f.scale},
            {"status", f.status}, {"reason", f.reason}, {"method", f.method}};
  if (f.status != "ok") return j;
  j.update({{"log_a", num(f.log_a)}, {"a", num(std::exp(f.log_a))}, {"beta", num(f.beta)},
            {"se_log_a", num(f.se_log_a)}, {"se_beta", num(f.se_beta)}, {"cov_log_a_beta", num(f.cov_log_a_beta)},
            {"beta_ci95", pair(f.beta_ci_lo, f.beta_ci_hi)}, {"log_a_ci95", pair(f.log_a_ci_lo, f.log_a_ci_hi)},
            {"beta_bootstrap_ci95", f.has_bootstrap ? pair(f.beta_boot_lo, f.beta_boot_hi) : json(nullptr)},
            {"bootstrap_samples", f.bootstrap_samples}, {"r2", num(f.r2)}, {"residual_scale", num(f.residual_scale)},
            {"dof", f.dof}, {"params_range", pair(f.params_min, f.params_max)}, {"num_sizes", f.num_sizes},
            {"num_runs", f.num_runs}, {"leave_largest_out", llo_json(f.leave_largest_out)}});
  json runs = json::array();
  for (const auto& p : f.points) runs.push_back(run_json(p));
  j["runs"] = runs;
  return j;
}

/// Field access for the reader: every failure names the file and the JSON path.
class Reader {
 public:
  explicit Reader(std::string path) : path_(std::move(path)) {}

  [[noreturn]] void fail(const std::string& where, const std::string& what) const { throw InputError(path_, "", where + ": " + what); }

  const json& field(const json& obj, const std::string& where, const char* key) const {
    if (!obj.is_object() || !obj.contains(key)) fail(where + "." + key, "missing");
    return obj[key];
  }
  double number(const json& obj, const std::string& where, const char* key, bool required = true) const {
    if (!required && (!obj.contains(key) || obj[key].is_null())) return kNaN;
    const json& v = field(obj, where, key);
    if (!v.is_number()) fail(where + "." + key, "expected a number");
    return v.get<double>();
  }
  std::string text(const json& obj, const std::string& where, const char* key, bool required = true) const {
    if (!required && !obj.contains(key)) return "";
    const json& v = field(obj, where, key);
    if (!v.is_string()) fail(where + "." + key, "expected a string");
    return v.get<std::string>();
  }
  int integer(const json& obj, const std::string& where, const char* key, bool required = true) const {
    if (!required && !obj.contains(key)) return 0;
    const json& v = field(obj, where, key);
    if (!v.is_number_integer()) fail(where + "." + key, "expected an integer");
    return v.get<int>();
  }
  std::pair<double, double> range(const json& obj, const std::string& where, const char* key, bool required = true) const {
    if (!required && (!obj.contains(key) || obj[key].is_null())) return {kNaN, kNaN};
    const json& v = field(obj, where, key);
    if (!v.is_array() || v.size() != 2) fail(where + "." + key, "expected [lo, hi]");
    auto one = [&](const json& e) { return e.is_null() ? kNaN : e.is_number() ? e.get<double>() : (fail(where + "." + key, "expected numbers"), 0.0); };
    return {one(v[0]), one(v[1])};
  }

 private:
  std::string path_;
};

GroupSelector read_group(const Reader& rd, const json& g, const std::string& at) {
  GroupSelector s;
  s.name = rd.text(g, at, "name");
  s.op_type = rd.text(g, at, "op_type");
  std::tie(s.depth_lo, s.depth_hi) = rd.range(g, at, "depth");
  s.layer_from_end = rd.integer(g, at, "layer_from_end");
  return s;
}

RunPoint read_run(const Reader& rd, const json& r, const std::string& at) {
  RunPoint p;
  p.run = rd.text(r, at, "run");
  p.model_params = rd.number(r, at, "model_params");
  p.log_value = rd.number(r, at, "log_value");
  p.log_se = rd.number(r, at, "log_se", false);
  p.weight = rd.number(r, at, "weight", false);
  p.residual = rd.number(r, at, "residual", false);
  p.matrices = rd.integer(r, at, "matrices", false);
  p.unsettled = rd.integer(r, at, "unsettled", false);
  if (r.contains("members") && r["members"].is_array())
    for (const auto& m : r["members"])
      if (m.is_string()) p.members.push_back(m.get<std::string>());
  return p;
}

void read_fit_numbers(const Reader& rd, const json& j, const std::string& at, FittedLaw& f) {
  f.log_a = rd.number(j, at, "log_a");
  f.beta = rd.number(j, at, "beta");
  f.se_log_a = rd.number(j, at, "se_log_a");
  f.se_beta = rd.number(j, at, "se_beta");
  f.cov_log_a_beta = rd.number(j, at, "cov_log_a_beta");
  f.residual_scale = rd.number(j, at, "residual_scale");
  f.dof = rd.integer(j, at, "dof");
  std::tie(f.params_min, f.params_max) = rd.range(j, at, "params_range");
  if (!(f.params_min > 0 && f.params_max >= f.params_min)) rd.fail(at + ".params_range", "expected 0 < lo <= hi");
  if (f.dof < 0 || !(f.residual_scale >= 0)) rd.fail(at + ".dof", "expected dof >= 0 and residual_scale >= 0");
  std::tie(f.beta_ci_lo, f.beta_ci_hi) = rd.range(j, at, "beta_ci95", false);
  std::tie(f.log_a_ci_lo, f.log_a_ci_hi) = rd.range(j, at, "log_a_ci95", false);
  std::tie(f.beta_boot_lo, f.beta_boot_hi) = rd.range(j, at, "beta_bootstrap_ci95", false);
  f.has_bootstrap = std::isfinite(f.beta_boot_lo);
  f.bootstrap_samples = rd.integer(j, at, "bootstrap_samples", false);
  f.r2 = rd.number(j, at, "r2", false);
  f.num_sizes = rd.integer(j, at, "num_sizes", false);
  f.num_runs = rd.integer(j, at, "num_runs", false);
}

void read_llo(const Reader& rd, const json& l, const std::string& at, LeaveLargestOut& o) {
  o.done = l.value("done", false);
  o.note = rd.text(l, at, "note", false);
  o.held_out_params = rd.number(l, at, "held_out_params", false);
  o.predicted_log = rd.number(l, at, "predicted_log", false);
  o.actual_log = rd.number(l, at, "actual_log", false);
  o.error_log = rd.number(l, at, "error_log", false);
  o.relative_error = rd.number(l, at, "relative_error", false);
  o.beta = rd.number(l, at, "beta", false);
  o.within_interval = l.value("within_interval", false);
}

FittedLaw read_law(const Reader& rd, const json& j, const std::string& at) {
  FittedLaw f;
  f.group = read_group(rd, rd.field(j, at, "group"), at + ".group");
  f.quantile_level = rd.number(j, at, "quantile");
  if (!(f.quantile_level >= 0 && f.quantile_level <= 1)) rd.fail(at + ".quantile", "expected a level in [0, 1]");
  f.scale = rd.text(j, at, "scale");
  f.status = rd.text(j, at, "status");
  if (f.status != "ok" && f.status != "refused") rd.fail(at + ".status", "expected \"ok\" or \"refused\"");
  f.reason = rd.text(j, at, "reason", false);
  f.method = rd.text(j, at, "method", false);
  if (f.status != "ok") return f;
  read_fit_numbers(rd, j, at, f);
  if (j.contains("leave_largest_out") && j["leave_largest_out"].is_object())
    read_llo(rd, j["leave_largest_out"], at + ".leave_largest_out", f.leave_largest_out);
  if (j.contains("runs") && j["runs"].is_array())
    for (size_t i = 0; i < j["runs"].size(); ++i)
      f.points.push_back(read_run(rd, j["runs"][i], at + ".runs[" + std::to_string(i) + "]"));
  return f;
}

}  // namespace

std::string laws_json_text(const LawSet& s) {
  json laws = json::array();
  for (const auto& f : s.laws) laws.push_back(law_json(f));
  const json doc = {{"format", kLawsFormat}, {"version", kLawsFormatVersion}, {"muspec_version", s.muspec_version},
                    {"created", s.created}, {"inputs", s.inputs}, {"kind", s.kind}, {"scale", s.scale},
                    {"grouping", s.grouping}, {"burn_in", s.burn_in}, {"method", s.method},
                    {"quantiles", s.quantiles}, {"laws", laws}};
  return doc.dump(2) + "\n";
}

void write_laws_json(const std::string& path, const LawSet& laws) { write_file_atomically(path, laws_json_text(laws)); }

LawSet read_laws_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path, "", "cannot open the laws file");
  json doc;
  try {
    doc = json::parse(in);
  } catch (const json::exception& e) {
    throw InputError(path, "", std::string("not valid JSON: ") + e.what());
  }
  const Reader rd(path);
  if (!doc.is_object() || !doc.contains("format") || doc["format"] != kLawsFormat)
    rd.fail("format", std::string("expected \"") + kLawsFormat + "\" (is this a laws.json from `muspec fit`?)");
  if (rd.integer(doc, "", "version") != kLawsFormatVersion)
    rd.fail("version", "unsupported version " + doc["version"].dump() + " (this muspec reads version 1)");
  LawSet s;
  s.muspec_version = rd.text(doc, "", "muspec_version", false);
  s.created = rd.text(doc, "", "created", false);
  s.kind = rd.text(doc, "", "kind", false);
  s.scale = rd.text(doc, "", "scale", false);
  s.grouping = rd.text(doc, "", "grouping", false);
  s.burn_in = rd.text(doc, "", "burn_in", false);
  s.method = rd.text(doc, "", "method", false);
  if (doc.contains("inputs") && doc["inputs"].is_array())
    for (const auto& i : doc["inputs"]) if (i.is_string()) s.inputs.push_back(i.get<std::string>());
  if (doc.contains("quantiles") && doc["quantiles"].is_array())
    for (const auto& q : doc["quantiles"]) if (q.is_number()) s.quantiles.push_back(q.get<double>());
  const json& laws = rd.field(doc, "", "laws");
  if (!laws.is_array()) rd.fail("laws", "expected a list");
  for (size_t i = 0; i < laws.size(); ++i) s.laws.push_back(read_law(rd, laws[i], "laws[" + std::to_string(i) + "]"));
  return s;
}

double law_log_prediction(const FittedLaw& law, double model_params) {
  return law.log_a + law.beta * std::log(model_params);
}

double law_prediction_sd(const FittedLaw& law, double model_params) {
  const double x = std::log(model_params);
  const double var_line = law.se_log_a * law.se_log_a + x * x * law.se_beta * law.se_beta + 2 * x * law.cov_log_a_beta;
  return std::sqrt(std::max(0.0, var_line) + law.residual_scale * law.residual_scale);
}

std::vector<LawPrediction> predict_laws(const LawSet& laws, double model_params, double level) {
  if (!(model_params > 0) || !std::isfinite(model_params)) throw UsageError("--params: expected a model size > 0");
  if (!(level > 0 && level < 1)) throw UsageError("--level: expected a level in (0, 1)");
  std::vector<LawPrediction> out;
  for (const auto& law : laws.laws) {
    if (law.status != "ok") continue;
    LawPrediction p;
    p.group = law.group;
    p.quantile_level = law.quantile_level;
    p.scale = law.scale;
    p.kind = laws.kind;
    p.level = level;
    p.beta = law.beta;
    const double y = law_log_prediction(law, model_params);
    p.predicted = std::exp(y);
    if (law.dof > 0) {
      const double half = student_t_quantile(0.5 + 0.5 * level, law.dof) * law_prediction_sd(law, model_params);
      p.lower = std::exp(y - half);
      p.upper = std::exp(y + half);
    } else {
      p.lower = 0;
      p.upper = std::numeric_limits<double>::infinity();
    }
    p.extrapolated = model_params < law.params_min || model_params > law.params_max;
    out.push_back(p);
  }
  return out;
}

}  // namespace muspec::analysis
