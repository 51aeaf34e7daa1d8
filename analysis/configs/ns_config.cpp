#include "configs/ns_config.h"

#include <cmath>
#include <ctime>

#include "core/atomic_file.h"
#include "core/build_config.h"
#include "core/error.h"
#include "ns/catalog.h"
#include "ns/cost.h"

namespace muspec {

using nlohmann::json;

NsSetting default_ns_setting() { return setting_from_schedule(ns::builtin_schedule("keller"), 5); }

NsSetting setting_from_schedule(const ns::Schedule& schedule, int steps) {
  NsSetting s;
  s.steps = steps;
  s.coefficients = schedule.polys_for(steps);
  s.normalization = schedule.normalization;
  return s;
}

ns::Schedule schedule_from_setting(const NsSetting& setting) {
  ns::Schedule s;
  s.name = "configured";
  s.polys = setting.coefficients;
  s.normalization = setting.normalization;
  s.default_steps = setting.steps;
  return s;
}

double setting_flops(const NsSetting& setting, int64_t rows, int64_t cols) {
  double total = ns::normalization_flops(rows, cols);
  for (const ns::OddPoly& p : setting.coefficients) total += ns::step_flops(p, rows, cols);
  return total;
}

NsConfigTotals ns_config_totals(const NsConfig& config) {
  NsConfigTotals t;
  double f = 0.0, f0 = 0.0;
  bool known = true;
  auto add = [&](const NsConfigEntry& e, double count) {
    if (!e.flops || !e.default_flops) known = false;
    else f += *e.flops * count, f0 += *e.default_flops * count;
  };
  for (const auto& p : config.parameters) add(p, 1.0);
  for (const auto& p : config.patterns) add(p, p.last_layer - p.first_layer + 1.0);
  t.parameters = static_cast<int64_t>(config.parameters.size());
  if (known && (!config.parameters.empty() || !config.patterns.empty())) t.flops = f, t.default_flops = f0;
  return t;
}

std::string iso_utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

json coefficients_to_json(const std::vector<ns::OddPoly>& polys) {
  json arr = json::array();
  for (const ns::OddPoly& p : polys) arr.push_back({p.a, p.b, p.c});
  return arr;
}

namespace {

json opt_number(const std::optional<double>& x) { return x ? json(*x) : json(nullptr); }

json normalization_to_json(const ns::Normalization& n) {
  return {{"delta", n.delta}, {"epsilon", n.epsilon}};
}

json setting_to_json(const NsSetting& s) {
  return {{"steps", s.steps}, {"coefficients", coefficients_to_json(s.coefficients)},
          {"normalization", normalization_to_json(s.normalization)}};
}

void put_entry(json& o, const NsConfigEntry& e) {
  o["op_type"] = e.op_type;
  o["group"] = e.group;
  o["lower_bound"] = e.lower_bound;
  o["bound_kind"] = e.bound_kind;
  o["requirement_met"] = e.requirement_met;
  o["output_range"] = {e.image.lo, e.image.hi};
  o["flops"] = opt_number(e.flops);
  o["default_flops"] = opt_number(e.default_flops);
}

json stability_to_json(const NsStability& s) {
  json cps = json::array();
  for (size_t i = 0; i < s.steps.size(); ++i)
    cps.push_back({{"step", s.steps[i]}, {"lower_bound", s.lower_bounds[i]}, {"steps_needed", s.needed[i]}});
  return {{"lower_bound_from", s.lower_bound_from}, {"checkpoints", cps}, {"threshold", opt_number(s.threshold)},
          {"threshold_ratio", opt_number(s.threshold_ratio)}, {"fragile", s.fragile}};
}

json parameter_to_json(const NsConfigParameter& p) {
  json o = setting_to_json(p.setting);
  o["shape"] = p.shape;
  o["layer"] = p.layer;
  put_entry(o, p);
  if (p.matrices != 1) o["matrices"] = p.matrices;
  if (!p.storage.empty()) o["storage"] = p.storage;
  if (p.stability) o["stability"] = stability_to_json(*p.stability);
  if (p.verified)
    o["verified"] = {{"min_gain", p.verified->min_gain}, {"max_gain", p.verified->max_gain}, {"margin", p.verified->margin},
                     {"added_steps", p.verified->added_steps}, {"passed", p.verified->passed}, {"matrices", p.verified->matrices},
                     {"realizations", p.verified->realizations}};
  return o;
}

// Version 2 (spectral family): iteration steps per root call instead of NS coefficients.
json family_parameter_to_json(const NsConfigParameter& p) {
  json o = {{"steps", p.setting.steps}, {"shape", p.shape}, {"layer", p.layer}, {"op_type", p.op_type}, {"group", p.group},
            {"lower_bound", p.lower_bound}, {"bound_kind", p.bound_kind}, {"requirement_met", p.requirement_met},
            {"flops", opt_number(p.flops)}, {"default_flops", opt_number(p.default_flops)}};
  if (p.matrices != 1) o["matrices"] = p.matrices;
  if (!p.storage.empty()) o["storage"] = p.storage;
  if (p.family) {
    o["max_rel_error"] = p.family->max_rel_error;
    o["matrix_rel_error"] = p.family->matrix_rel_error;
    if (p.family->verified_max_rel_error) o["verified_max_rel_error"] = *p.family->verified_max_rel_error;
  }
  if (p.stability) o["stability"] = stability_to_json(*p.stability);
  return o;
}

json spectral_map_to_json(const NsSpectralMapConfig& s) {
  return {{"power", s.map.power.text()},
          {"power_value", s.map.power.value()},
          {"iteration", ns::iteration_name(s.map.iteration)},
          {"regularization", {{"absolute", s.map.regularization.absolute}, {"relative", s.map.regularization.relative}}},
          {"tolerance", s.tolerance},
          {"input", s.input}};
}

json pattern_to_json(const NsConfigPattern& p) {
  json o = {{"regex", p.regex}, {"layers", {p.first_layer, p.last_layer}}};
  const json setting = setting_to_json(p.setting);  // named: items() must not outlive it
  for (const auto& [k, v] : setting.items()) o[k] = v;
  put_entry(o, p);
  if (!p.shape.empty()) o["shape"] = p.shape;
  o["predicted"] = p.predicted;
  o["extrapolated"] = p.extrapolated;
  return o;
}

}  // namespace

json provenance_to_json(const NsConfigProvenance& p) {
  return {{"mode", p.mode},
          {"inputs", p.inputs},
          {"quantile", p.quantile},
          {"family", p.family},
          {"band", {p.band.lo, p.band.hi}},
          {"margin", p.margin},
          {"target_params", opt_number(p.target_params)},
          {"level", opt_number(p.level)},
          {"precision", p.precision},
          {"precision_band", {p.precision_band.value_or(p.band).lo, p.precision_band.value_or(p.band).hi}},
          {"verified", p.verified}};
}

json ns_config_to_json(const NsConfig& c) {
  json j = {{"format", kNsConfigFormat},          {"version", kNsConfigVersion},
            {"muspec_version", kVersion},         {"created", iso_utc_now()},
            {"command", c.provenance.command},    {"provenance", provenance_to_json(c.provenance)},
            {"default", setting_to_json(c.default_setting)}};
  if (c.spectral_map) {
    j["version"] = kNsConfigFamilyVersion;
    j["spectral_map"] = spectral_map_to_json(*c.spectral_map);
    j["default"] = {{"steps", c.spectral_map->map.is_identity() ? 0 : c.spectral_map->map.steps}};
  }
  json params = json::object();
  for (const auto& p : c.parameters) params[p.name] = c.spectral_map ? family_parameter_to_json(p) : parameter_to_json(p);
  j["parameters"] = params;
  json pats = json::array();
  for (const auto& p : c.patterns) pats.push_back(pattern_to_json(p));
  j["patterns"] = pats;
  const NsConfigTotals t = ns_config_totals(c);
  j["totals"] = {{"flops", opt_number(t.flops)},
                 {"default_flops", opt_number(t.default_flops)},
                 {"ratio", t.flops && *t.default_flops > 0 ? json(*t.flops / *t.default_flops) : json(nullptr)},
                 {"parameters", t.parameters}};
  for (auto& [k, v] : c.extra.items()) j[k] = v;
  return j;
}

void write_json_atomically(const std::string& path, const json& j) {
  write_file_atomically(path, j.dump(2) + "\n");
}

// ---------------------------------------------------------------- validation
namespace {

bool is_finite_number(const json& v) { return v.is_number() && std::isfinite(v.get<double>()); }

// "" or the problem with one setting (steps, coefficients, normalization).
std::string setting_problem(const json& o) {
  if (!o.is_object()) return "not an object";
  if (!o.contains("steps") || !o["steps"].is_number_integer()) return "missing integer 'steps'";
  const int64_t steps = o["steps"].get<int64_t>();
  if (steps < 1 || steps >= 100) return "steps = " + std::to_string(steps) + " outside [1, 99]";
  if (!o.contains("coefficients") || !o["coefficients"].is_array()) return "missing array 'coefficients'";
  const json& cs = o["coefficients"];
  if (static_cast<int64_t>(cs.size()) != steps)
    return std::to_string(cs.size()) + " coefficient triples for " + std::to_string(steps) + " steps";
  for (size_t i = 0; i < cs.size(); ++i) {
    const json& t = cs[i];
    if (!t.is_array() || t.size() != 3 || !is_finite_number(t[0]) || !is_finite_number(t[1]) ||
        !is_finite_number(t[2]))
      return "coefficients[" + std::to_string(i) + "] is not a triple of finite numbers";
    if (!(t[0].get<double>() > 0.0)) return "coefficients[" + std::to_string(i) + "]: a must be > 0";
  }
  if (!o.contains("normalization") || !o["normalization"].is_object()) return "missing object 'normalization'";
  const json& n = o["normalization"];
  if (!n.contains("delta") || !is_finite_number(n["delta"]) || n["delta"].get<double>() < 0.0)
    return "normalization.delta must be a finite number >= 0";
  if (!n.contains("epsilon") || !is_finite_number(n["epsilon"]) || n["epsilon"].get<double>() < 0.0)
    return "normalization.epsilon must be a finite number >= 0";
  return "";
}

// Version 2: an entry holds iteration steps per root call only (0 for p = 1).
std::string family_setting_problem(const json& o, bool identity) {
  if (!o.is_object()) return "not an object";
  if (!o.contains("steps") || !o["steps"].is_number_integer()) return "missing integer 'steps'";
  const int64_t steps = o["steps"].get<int64_t>();
  if (identity ? steps != 0 : (steps < 1 || steps >= 100))
    return "steps = " + std::to_string(steps) + (identity ? " for p = 1 (must be 0)" : " outside [1, 99]");
  return "";
}

// "" or the problem with the "spectral_map" block; `identity` is set for p = 1.
std::string spectral_map_problem(const json& j, bool* identity) {
  if (!j.contains("spectral_map") || !j["spectral_map"].is_object()) return "version 2 needs an object 'spectral_map'";
  const json& m = j["spectral_map"];
  if (!m.contains("power") || !m["power"].is_string()) return "spectral_map.power must be a string (\"1/2\")";
  ns::SpectralPower p;
  try {
    p = ns::parse_power(m["power"].get<std::string>());
    const std::string it = m.contains("iteration") && m["iteration"].is_string() ? m["iteration"].get<std::string>() : "";
    ns::SpectralMap map = ns::make_spectral_map(p, ns::parse_iteration(it), ns::kPaperSteps);
    (void)map;
  } catch (const Error& e) {
    return std::string("spectral_map: ") + e.what();
  }
  *identity = p.num == p.den;
  const json& r = m.value("regularization", json());
  if (!r.is_object() || !r.contains("absolute") || !r.contains("relative") || !is_finite_number(r["absolute"]) ||
      !is_finite_number(r["relative"]) || r["absolute"].get<double>() < 0.0 || r["relative"].get<double>() < 0.0)
    return "spectral_map.regularization must hold finite 'absolute' and 'relative' >= 0";
  if (!m.contains("tolerance") || !is_finite_number(m["tolerance"]) || !(m["tolerance"].get<double>() > 0.0))
    return "spectral_map.tolerance must be a number > 0";
  const std::string input = m.contains("input") && m["input"].is_string() ? m["input"].get<std::string>() : "";
  if (input != "momentum" && input != "rms_normalized") return "spectral_map.input must be momentum or rms_normalized";
  return "";
}

std::string pattern_problem(const json& p) {
  if (!p.is_object()) return "not an object";
  if (!p.contains("regex") || !p["regex"].is_string() || p["regex"].get<std::string>().empty())
    return "missing string 'regex'";
  const std::string re = p["regex"].get<std::string>();
  if (re.find("(?<") != std::string::npos || re.find("(?P") != std::string::npos)
    return "regex uses named groups or lookbehind (not portable between C++ and Python)";
  if (re.find('(') == std::string::npos) return "regex has no capture group for the layer index";
  const json& l = p.value("layers", json());
  if (!l.is_array() || l.size() != 2 || !l[0].is_number_integer() || !l[1].is_number_integer() ||
      l[0].get<int64_t>() < 0 || l[0].get<int64_t>() > l[1].get<int64_t>())
    return "'layers' must be [first, last] with 0 <= first <= last";
  return setting_problem(p);
}

}  // namespace

std::string ns_config_problem(const json& j) {
  if (!j.is_object()) return "the document is not a JSON object";
  // Typed checks before every read: a wrong-typed field is a problem, never a json type_error.
  if (!j.contains("format") || !j["format"].is_string() || j["format"].get<std::string>() != kNsConfigFormat)
    return std::string("'format' is not the string \"") + kNsConfigFormat + "\"";
  if (!j.contains("version") || !j["version"].is_number_integer() ||
      (j["version"].get<int64_t>() != kNsConfigVersion && j["version"].get<int64_t>() != kNsConfigFamilyVersion))
    return "'version' is not 1 or 2";
  const bool family = j["version"].get<int64_t>() == kNsConfigFamilyVersion;
  bool identity = false;
  if (family)
    if (std::string p = spectral_map_problem(j, &identity); !p.empty()) return p;
  const auto entry_problem = [&](const json& e) { return family ? family_setting_problem(e, identity) : setting_problem(e); };
  for (const char* key : {"muspec_version", "created", "command"})
    if (!j.contains(key) || !j[key].is_string()) return std::string("missing string '") + key + "'";
  if (!j.contains("provenance") || !j["provenance"].is_object()) return "missing object 'provenance'";
  const json& prov = j["provenance"];
  const std::string mode =
      prov.contains("mode") && prov["mode"].is_string() ? prov["mode"].get<std::string>() : std::string();
  if (mode != "measured" && mode != "predicted" && mode != "plan")
    return "provenance.mode must be the string measured, predicted or plan";
  if (!j.contains("default")) return "missing 'default'";
  if (std::string p = entry_problem(j["default"]); !p.empty()) return "default: " + p;
  if (!j.contains("parameters") || !j["parameters"].is_object()) return "missing object 'parameters'";
  for (const auto& [name, entry] : j["parameters"].items())
    if (std::string p = entry_problem(entry); !p.empty()) return "parameters." + name + ": " + p;
  if (!j.contains("patterns") || !j["patterns"].is_array()) return "missing array 'patterns'";
  if (family && !j["patterns"].empty()) return "version 2 documents have no name patterns";
  for (size_t i = 0; i < j["patterns"].size(); ++i)
    if (std::string p = pattern_problem(j["patterns"][i]); !p.empty())
      return "patterns[" + std::to_string(i) + "]: " + p;
  if (!j.contains("totals") || !j["totals"].is_object()) return "missing object 'totals'";
  return "";
}

}  // namespace muspec
