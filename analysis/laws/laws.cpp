#include "laws/laws.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_limits.h"
#include "laws/student_t.h"

namespace muspec::analysis {

namespace {

using nlohmann::json;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int64_t kMaxCount = 1'000'000'000;   // dof, run and matrix counts
constexpr int64_t kMaxLayerFromEnd = 1'000'000;

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
          {"members", p.members}, {"null_log_value", num(p.null_log_value)}};
}

json null_json(const NullComparison& n) {
  json j = {{"done", n.done}, {"note", n.note}};
  if (!n.done) return j;
  j.update({{"beta_null", num(n.beta_null)}, {"se_beta_null", num(n.se_beta_null)},
            {"beta_minus_null", num(n.diff)}, {"se_beta_minus_null", num(n.se_diff)},
            {"beta_minus_null_ci95", pair(n.diff_ci_lo, n.diff_ci_hi)}, {"differs", n.differs}});
  return j;
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
            {"member_sd", num(f.member_sd)}, {"member_dof", f.member_dof},
            {"dof", f.dof}, {"params_range", pair(f.params_min, f.params_max)}, {"num_sizes", f.num_sizes},
            {"num_runs", f.num_runs}, {"leave_largest_out", llo_json(f.leave_largest_out)},
            {"one_member_per_run", f.one_member_per_run}, {"null", null_json(f.null)}});
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

  static std::string key_path(const std::string& where, const char* key) { return where.empty() ? key : where + "." + key; }
  static bool has(const json& obj, const char* key) { return obj.is_object() && obj.contains(key) && !obj[key].is_null(); }

  const json& field(const json& obj, const std::string& where, const char* key) const {
    if (!obj.is_object() || !obj.contains(key)) fail(key_path(where, key), "missing");
    return obj[key];
  }
  /// A number (optional ones: absent or null gives NaN, as written for non-finite values).
  double number(const json& obj, const std::string& where, const char* key, bool required = true) const {
    if (!required && !has(obj, key)) return kNaN;
    const json& v = field(obj, where, key);
    if (!v.is_number()) fail(key_path(where, key), "expected a number");
    return v.get<double>();
  }
  /// A required finite number, >= `min` when given.
  double finite(const json& obj, const std::string& where, const char* key, double min = -kInf) const {
    const double v = number(obj, where, key);
    if (!std::isfinite(v) || v < min)
      fail(key_path(where, key), min == -kInf ? "expected a finite number" : "expected a finite number >= " + fmt(min));
    return v;
  }
  std::string text(const json& obj, const std::string& where, const char* key, bool required = true) const {
    if (!required && !obj.contains(key)) return "";
    const json& v = field(obj, where, key);
    if (!v.is_string()) fail(key_path(where, key), "expected a string");
    return v.get<std::string>();
  }
  /// An integer in [lo, hi], range-checked before narrowing (optional ones: absent gives `dflt`).
  int64_t integer(const json& obj, const std::string& where, const char* key, int64_t lo, int64_t hi,
                  bool required = true, int64_t dflt = 0) const {
    if (!required && !obj.contains(key)) return dflt;
    const json& v = field(obj, where, key);
    if (!v.is_number_integer()) fail(key_path(where, key), "expected an integer");
    const std::string bounds = "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    if (v.is_number_unsigned()) {
      const uint64_t u = v.get<uint64_t>();
      if (hi < 0 || u > static_cast<uint64_t>(hi) || static_cast<int64_t>(u) < lo) fail(key_path(where, key), bounds);
      return static_cast<int64_t>(u);
    }
    const int64_t i = v.get<int64_t>();
    if (i < lo || i > hi) fail(key_path(where, key), bounds);
    return i;
  }
  int count(const json& obj, const std::string& where, const char* key, bool required = true) const {
    return static_cast<int>(integer(obj, where, key, 0, kMaxCount, required));
  }
  bool boolean(const json& obj, const std::string& where, const char* key) const {
    if (!obj.contains(key)) return false;
    const json& v = obj[key];
    if (!v.is_boolean()) fail(key_path(where, key), "expected true or false");
    return v.get<bool>();
  }
  std::pair<double, double> range(const json& obj, const std::string& where, const char* key, bool required = true) const {
    if (!required && !has(obj, key)) return {kNaN, kNaN};
    const json& v = field(obj, where, key);
    if (!v.is_array() || v.size() != 2) fail(key_path(where, key), "expected [lo, hi]");
    auto one = [&](const json& e) { return e.is_null() ? kNaN : e.is_number() ? e.get<double>() : (fail(key_path(where, key), "expected numbers"), 0.0); };
    return {one(v[0]), one(v[1])};
  }
  std::vector<std::string> strings(const json& obj, const std::string& where, const char* key) const {
    std::vector<std::string> out;
    if (!has(obj, key)) return out;
    const json& v = obj[key];
    if (!v.is_array()) fail(key_path(where, key), "expected a list of strings");
    for (const auto& e : v) {
      if (!e.is_string()) fail(key_path(where, key), "expected a list of strings");
      out.push_back(e.get<std::string>());
    }
    return out;
  }
  const std::string& path() const { return path_; }

 private:
  static std::string fmt(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
  }
  std::string path_;
};

GroupSelector read_group(const Reader& rd, const json& g, const std::string& at) {
  GroupSelector s;
  if (!g.is_object()) rd.fail(at, "expected an object");
  s.name = rd.text(g, at, "name");
  s.op_type = rd.text(g, at, "op_type");
  const json& d = rd.field(g, at, "depth");
  if (!d.is_array() || d.size() != 2 || !d[0].is_number() || !d[1].is_number())
    rd.fail(at + ".depth", "expected [lo, hi], two numbers in [0, 1]");
  s.depth_lo = d[0].get<double>(), s.depth_hi = d[1].get<double>();
  if (!(s.depth_lo >= 0 && s.depth_hi <= 1 && s.depth_lo <= s.depth_hi))
    rd.fail(at + ".depth", "expected [lo, hi] with 0 <= lo <= hi <= 1");
  s.layer_from_end = static_cast<int>(rd.integer(g, at, "layer_from_end", -1, kMaxLayerFromEnd));
  return s;
}

RunPoint read_run(const Reader& rd, const json& r, const std::string& at) {
  RunPoint p;
  if (!r.is_object()) rd.fail(at, "expected an object");
  p.run = rd.text(r, at, "run");
  p.model_params = rd.finite(r, at, "model_params", 0);
  p.log_value = rd.finite(r, at, "log_value");
  p.log_se = rd.number(r, at, "log_se", false);
  p.weight = rd.number(r, at, "weight", false);
  p.residual = rd.number(r, at, "residual", false);
  p.matrices = rd.count(r, at, "matrices", false);
  p.unsettled = rd.count(r, at, "unsettled", false);
  p.members = rd.strings(r, at, "members");
  p.null_log_value = rd.number(r, at, "null_log_value", false);
  return p;
}

void read_fit_numbers(const Reader& rd, const json& j, const std::string& at, FittedLaw& f) {
  f.log_a = rd.finite(j, at, "log_a");
  f.beta = rd.finite(j, at, "beta");
  f.se_log_a = rd.finite(j, at, "se_log_a", 0);
  f.se_beta = rd.finite(j, at, "se_beta", 0);
  f.cov_log_a_beta = rd.finite(j, at, "cov_log_a_beta");
  // |cov| <= se_a se_b (Cauchy-Schwarz), with room for rounding in the written digits.
  const double bound = f.se_log_a * f.se_beta;
  if (std::fabs(f.cov_log_a_beta) > bound * (1 + 1e-9) + 1e-300)
    rd.fail(at + ".cov_log_a_beta", "|cov| exceeds se_log_a * se_beta (not a covariance)");
  f.residual_scale = rd.finite(j, at, "residual_scale", 0);
  if (Reader::has(j, "member_sd")) {
    f.member_sd = rd.finite(j, at, "member_sd", 0);
  } else {
    f.member_sd = 0, f.has_member_sd = false;
  }
  f.member_dof = Reader::has(j, "member_dof") ? static_cast<int>(rd.integer(j, at, "member_dof", 0, kMaxCount)) : 0;
  f.dof = static_cast<int>(rd.integer(j, at, "dof", 0, kMaxCount));
  std::tie(f.params_min, f.params_max) = rd.range(j, at, "params_range");
  if (!(f.params_min > 0 && f.params_max >= f.params_min && std::isfinite(f.params_max)))
    rd.fail(at + ".params_range", "expected finite 0 < lo <= hi");
  std::tie(f.beta_ci_lo, f.beta_ci_hi) = rd.range(j, at, "beta_ci95", false);
  std::tie(f.log_a_ci_lo, f.log_a_ci_hi) = rd.range(j, at, "log_a_ci95", false);
  std::tie(f.beta_boot_lo, f.beta_boot_hi) = rd.range(j, at, "beta_bootstrap_ci95", false);
  f.has_bootstrap = std::isfinite(f.beta_boot_lo);
  f.bootstrap_samples = rd.count(j, at, "bootstrap_samples", false);
  f.r2 = rd.number(j, at, "r2", false);
  f.num_sizes = rd.count(j, at, "num_sizes", false);
  f.num_runs = rd.count(j, at, "num_runs", false);
}

void read_llo(const Reader& rd, const json& l, const std::string& at, LeaveLargestOut& o) {
  o.done = rd.boolean(l, at, "done");
  o.note = rd.text(l, at, "note", false);
  o.held_out_params = rd.number(l, at, "held_out_params", false);
  o.predicted_log = rd.number(l, at, "predicted_log", false);
  o.actual_log = rd.number(l, at, "actual_log", false);
  o.error_log = rd.number(l, at, "error_log", false);
  o.relative_error = rd.number(l, at, "relative_error", false);
  o.beta = rd.number(l, at, "beta", false);
  o.within_interval = rd.boolean(l, at, "within_interval");
}

/// The optional "null" object (absent in files written before the null existed).
void read_null(const Reader& rd, const json& j, const std::string& at, NullComparison& n) {
  n.done = rd.boolean(j, at, "done");
  n.note = rd.text(j, at, "note", false);
  if (!n.done) return;
  n.beta_null = rd.finite(j, at, "beta_null");
  n.se_beta_null = rd.finite(j, at, "se_beta_null", 0);
  n.diff = rd.finite(j, at, "beta_minus_null");
  n.se_diff = rd.finite(j, at, "se_beta_minus_null", 0);
  std::tie(n.diff_ci_lo, n.diff_ci_hi) = rd.range(j, at, "beta_minus_null_ci95", false);
  n.differs = rd.boolean(j, at, "differs");
}

FittedLaw read_law(const Reader& rd, const json& j, const std::string& at) {
  FittedLaw f;
  if (!j.is_object()) rd.fail(at, "expected an object");
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
  if (Reader::has(j, "leave_largest_out")) {
    if (!j["leave_largest_out"].is_object()) rd.fail(at + ".leave_largest_out", "expected an object");
    read_llo(rd, j["leave_largest_out"], at + ".leave_largest_out", f.leave_largest_out);
  }
  f.one_member_per_run = rd.boolean(j, at, "one_member_per_run");
  if (Reader::has(j, "null")) {
    if (!j["null"].is_object()) rd.fail(at + ".null", "expected an object");
    read_null(rd, j["null"], at + ".null", f.null);
  }
  if (Reader::has(j, "runs")) {
    if (!j["runs"].is_array()) rd.fail(at + ".runs", "expected a list");
    for (size_t i = 0; i < j["runs"].size(); ++i)
      f.points.push_back(read_run(rd, j["runs"][i], at + ".runs[" + std::to_string(i) + "]"));
  }
  return f;
}

json null_model_json(const LawSet& s) {
  if (s.null_model.empty()) return nullptr;
  return {{"method", s.null_model}, {"draws", s.null_draws}, {"seed", s.null_seed}};
}

}  // namespace

std::string laws_json_text(const LawSet& s) {
  json laws = json::array();
  for (const auto& f : s.laws) laws.push_back(law_json(f));
  const json doc = {{"format", kLawsFormat}, {"version", kLawsFormatVersion}, {"muspec_version", s.muspec_version},
                    {"created", s.created}, {"inputs", s.inputs}, {"kind", s.kind}, {"scale", s.scale},
                    {"grouping", s.grouping}, {"burn_in", s.burn_in}, {"method", s.method},
                    {"quantiles", s.quantiles}, {"params_definition", s.params_definition},
                    {"params_sources", s.params_sources}, {"null_model", null_model_json(s)}, {"laws", laws}};
  return doc.dump(2) + "\n";
}

void write_laws_json(const std::string& path, const LawSet& laws) { write_file_atomically(path, laws_json_text(laws)); }

LawSet read_laws_json(const std::string& path) {
  JsonLimits limits;
  limits.syntax_label = "not valid JSON";
  const json doc = read_json_file(path, limits);  // a regular file, nesting limited
  const Reader rd(path);
  if (!doc.is_object() || !doc.contains("format") || doc["format"] != kLawsFormat)
    rd.fail("format", std::string("expected \"") + kLawsFormat + "\" (is this a laws.json from `muspec fit`?)");
  const json& version = rd.field(doc, "", "version");
  if (!version.is_number_integer() || version != kLawsFormatVersion)
    rd.fail("version", "unsupported version " + doc["version"].dump() + " (this muspec reads version 1)");
  LawSet s;
  s.muspec_version = rd.text(doc, "", "muspec_version", false);
  s.created = rd.text(doc, "", "created", false);
  s.kind = rd.text(doc, "", "kind", false);
  s.scale = rd.text(doc, "", "scale", false);
  s.grouping = rd.text(doc, "", "grouping", false);
  s.burn_in = rd.text(doc, "", "burn_in", false);
  s.method = rd.text(doc, "", "method", false);
  s.path = path;
  s.inputs = rd.strings(doc, "", "inputs");
  s.params_definition = rd.text(doc, "", "params_definition", false);
  s.params_sources = rd.strings(doc, "", "params_sources");
  if (Reader::has(doc, "null_model")) {
    const json& nm = doc["null_model"];
    if (!nm.is_object()) rd.fail("null_model", "expected an object or null");
    s.null_model = rd.text(nm, "null_model", "method");
    s.null_draws = rd.count(nm, "null_model", "draws", false);
    if (nm.contains("seed")) {  // any uint64 (the CLI takes one)
      if (!nm["seed"].is_number_unsigned()) rd.fail("null_model.seed", "expected an integer >= 0");
      s.null_seed = nm["seed"].get<uint64_t>();
    }
  }
  if (doc.contains("quantiles") && doc["quantiles"].is_array())
    for (const auto& q : doc["quantiles"]) if (q.is_number()) s.quantiles.push_back(q.get<double>());
  const json& laws = rd.field(doc, "", "laws");
  if (!laws.is_array()) rd.fail("laws", "expected a list");
  int without_member_sd = 0;
  for (size_t i = 0; i < laws.size(); ++i) {
    s.laws.push_back(read_law(rd, laws[i], "laws[" + std::to_string(i) + "]"));
    without_member_sd += s.laws.back().status == "ok" && !s.laws.back().has_member_sd;
  }
  if (without_member_sd > 0)
    s.notes.push_back(path + ": " + std::to_string(without_member_sd) + " fitted law(s) lack member_sd (an older file); "
                      "taken as 0, so per-matrix intervals equal the group-mean intervals (refit to get them)");
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

double law_member_prediction_sd(const FittedLaw& law, double model_params) {
  const double sd = law_prediction_sd(law, model_params);
  return std::sqrt(sd * sd + law.member_sd * law.member_sd);
}

double member_interval_dof(const FittedLaw& law, double model_params) {
  const double d1 = law.dof, d2 = law.member_dof;
  const double v1 = std::pow(law_prediction_sd(law, model_params), 2), v2 = law.member_sd * law.member_sd;
  if (d1 <= 0 || d2 <= 0 || !(v2 > 0)) return d1;
  const double dof = (v1 + v2) * (v1 + v2) / (v1 * v1 / d1 + v2 * v2 / d2);
  return std::clamp(dof, std::min(d1, d2), d1 + d2);
}

std::vector<LawPrediction> predict_laws(const LawSet& laws, double model_params, double level) {
  if (!(model_params >= kMinModelParams && model_params <= kMaxModelParams))
    throw UsageError("--params: expected a model size in [1e3, 1e15] parameters");
  if (!(level > 0 && level < 1)) throw UsageError("--level: expected a level in (0, 1)");
  const std::string file = laws.path.empty() ? "(laws)" : laws.path;
  std::vector<LawPrediction> out;
  for (size_t i = 0; i < laws.laws.size(); ++i) {
    const FittedLaw& law = laws.laws[i];
    if (law.status != "ok") continue;
    LawPrediction p;
    p.group = law.group;
    p.quantile_level = law.quantile_level;
    p.scale = law.scale;
    p.kind = laws.kind;
    p.level = level;
    p.beta = law.beta;
    p.law_index = i;
    const double y = law_log_prediction(law, model_params);
    p.predicted = std::exp(y);
    if (law.dof > 0) {
      const double t = student_t_quantile(0.5 + 0.5 * level, law.dof);
      const double half = t * law_prediction_sd(law, model_params);
      const double t_member = student_t_quantile(0.5 + 0.5 * level, member_interval_dof(law, model_params));
      const double member_half = t_member * law_member_prediction_sd(law, model_params);
      p.lower = std::exp(y - half), p.upper = std::exp(y + half);
      p.member_lower = std::exp(y - member_half), p.member_upper = std::exp(y + member_half);
    } else {
      p.lower = p.member_lower = 0;
      p.upper = p.member_upper = std::numeric_limits<double>::infinity();
    }
    const std::string at = "laws[" + std::to_string(i) + "]";
    char m[32];
    std::snprintf(m, sizeof m, "%g", model_params);
    for (const auto& [what, v] : {std::pair<const char*, double>{"prediction", p.predicted}, {"lower bound", p.lower},
                                  {"per-matrix lower bound", p.member_lower}}) {
      if (!std::isfinite(v) || !std::isfinite(y))
        throw InputError(file, "", at + ": the " + what + " at M = " + m + " is not a finite number (check log_a, beta "
                         "and their standard errors)");
      if (law.scale == "rel_frob" && v > 1.0)
        throw InputError(file, "", at + ": the " + what + " at M = " + m + " exceeds 1, impossible on the rel_frob "
                         "scale (sigma/||G||_F <= 1); the law is not credible");
    }
    p.extrapolated = model_params < law.params_min || model_params > law.params_max;
    out.push_back(p);
  }
  return out;
}

}  // namespace muspec::analysis
