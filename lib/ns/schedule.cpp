#include "ns/schedule.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json_limits.h"

namespace muspec::ns {

using nlohmann::json;

constexpr const char* kFormatTag = "muspec.ns.schedule";
constexpr int kFormatVersion = 1;

Band default_band(Family f) {
  if (f == Family::Settling) return Band{kSettlingBandLo, kSettlingBandHi};
  return Band{1.0 - kConvergingBandDelta, 1.0 + kConvergingBandDelta};
}

const char* family_name(Family f) { return f == Family::Settling ? "settling" : "converging"; }
const char* past_end_name(PastEnd p) { return p == PastEnd::Cycle ? "cycle" : "repeat_last"; }

const OddPoly& Schedule::step(int k) const {
  const int n = static_cast<int>(polys.size());
  if (past_end == PastEnd::Cycle) return polys[static_cast<size_t>(k % n)];
  return polys[static_cast<size_t>(k < n ? k : n - 1)];
}

std::vector<OddPoly> Schedule::polys_for(int steps) const {
  std::vector<OddPoly> out;
  out.reserve(static_cast<size_t>(steps > 0 ? steps : 0));
  for (int k = 0; k < steps; ++k) out.push_back(step(k));
  return out;
}

int Schedule::resolve_steps(std::optional<int> steps) const {
  const int k = steps ? *steps : (default_steps > 0 ? default_steps : static_cast<int>(polys.size()));
  if (k < 1) throw UsageError("the number of NS steps must be at least 1 (got " + std::to_string(k) + ")");
  if (k > 1000) throw UsageError("the number of NS steps must be at most 1000 (got " + std::to_string(k) + ")");
  return k;
}

Band Schedule::target_band() const { return band ? *band : default_band(family); }

double Schedule::input_factor(double frobenius) const {
  if (!std::isfinite(frobenius)) return 1.0 / (1.0 + normalization.delta);
  return frobenius / (frobenius * (1.0 + normalization.delta) + normalization.epsilon);
}

double Schedule::gain_at_zero(int steps) const {
  double g = 1.0;
  for (int k = 0; k < steps; ++k) g *= step(k).a;
  return g;
}

void Schedule::validate() const {
  const std::string who = "schedule '" + name + "': ";
  if (polys.empty()) throw UsageError(who + "no polynomials");
  for (size_t i = 0; i < polys.size(); ++i) {
    const OddPoly& p = polys[i];
    if (!std::isfinite(p.a) || !std::isfinite(p.b) || !std::isfinite(p.c))
      throw UsageError(who + "step " + std::to_string(i + 1) + " has a non-finite coefficient");
    if (!(p.a > 0.0))
      throw UsageError(who + "step " + std::to_string(i + 1) +
                       " has a <= 0 (a is the gain at zero and must be positive)");
  }
  if (!std::isfinite(normalization.delta) || normalization.delta <= -1.0)
    throw UsageError(who + "normalization delta must be finite and > -1");
  if (!std::isfinite(normalization.epsilon) || normalization.epsilon < 0.0)
    throw UsageError(who + "normalization epsilon must be finite and >= 0");
  if (default_steps < 0) throw UsageError(who + "default_steps must be >= 0");
  if (band && !(band->lo > 0.0 && band->lo < band->hi && std::isfinite(band->hi)))
    throw UsageError(who + "band must satisfy 0 < lo < hi");
}

json schedule_to_json(const Schedule& s) {
  json steps = json::array();
  for (const OddPoly& p : s.polys) {
    if (p.c == 0.0)
      steps.push_back({p.a, p.b});
    else
      steps.push_back({p.a, p.b, p.c});
  }
  json j = {
      {"format", kFormatTag},
      {"version", kFormatVersion},
      {"name", s.name},
      {"source", s.source},
      {"family", family_name(s.family)},
      {"normalization", {{"delta", s.normalization.delta}, {"epsilon", s.normalization.epsilon}}},
      {"past_end", past_end_name(s.past_end)},
      {"default_steps", s.default_steps},
      {"steps", steps},
  };
  if (s.band) j["band"] = {s.band->lo, s.band->hi};
  if (!s.metadata.empty()) j["metadata"] = s.metadata;
  return j;
}

namespace {

[[noreturn]] void bad(const std::string& origin, const std::string& reason) {
  throw InputError(origin, "", reason);
}

double number_at(const json& v, const std::string& origin, const std::string& what) {
  if (!v.is_number()) bad(origin, what + " must be a number");
  const double x = v.get<double>();
  if (!std::isfinite(x)) bad(origin, what + " must be finite");
  return x;
}

std::vector<OddPoly> parse_steps(const json& arr, const std::string& origin, const char* key) {
  if (!arr.is_array() || arr.empty()) bad(origin, std::string("'") + key + "' must be a non-empty array");
  std::vector<OddPoly> polys;
  for (size_t i = 0; i < arr.size(); ++i) {
    const json& row = arr[i];
    const std::string what = std::string(key) + "[" + std::to_string(i) + "]";
    if (!row.is_array() || row.size() < 2 || row.size() > 3)
      bad(origin, what + " must be [a, b] or [a, b, c]");
    OddPoly p;
    p.a = number_at(row[0], origin, what + "[0]");
    p.b = number_at(row[1], origin, what + "[1]");
    if (row.size() == 3) p.c = number_at(row[2], origin, what + "[2]");
    polys.push_back(p);
  }
  return polys;
}

}  // namespace

Schedule schedule_from_json(const json& j, const std::string& origin) {
  if (!j.is_object()) bad(origin, "a schedule file must hold a JSON object");
  Schedule s;
  if (!j.contains("format") && j.contains("coefficients")) {
    // Polar Express repository format: {"degree": 5, "params": {...}, "coefficients": [...]}.
    s.polys = parse_steps(j["coefficients"], origin, "coefficients");
    s.source = "Polar Express save_coefficients() file";
    if (j.contains("params")) s.metadata["params"] = j["params"];
  } else {
    if (!j.contains("format") || j["format"] != kFormatTag)
      bad(origin, std::string("not a muspec schedule file (expected \"format\": \"") + kFormatTag + "\")");
    if (!j.contains("version") || !j["version"].is_number_integer())
      bad(origin, "missing integer \"version\"");
    const int version = j["version"].get<int>();
    if (version != kFormatVersion)
      bad(origin, "schedule format version " + std::to_string(version) +
                      " is not supported (this muspec reads version " + std::to_string(kFormatVersion) + ")");
    if (!j.contains("steps")) bad(origin, "missing \"steps\"");
    s.polys = parse_steps(j["steps"], origin, "steps");
    if (j.contains("name") && j["name"].is_string()) s.name = j["name"].get<std::string>();
    if (j.contains("source") && j["source"].is_string()) s.source = j["source"].get<std::string>();
    if (j.contains("family")) {
      const json& f = j["family"];
      if (f == "settling") s.family = Family::Settling;
      else if (f == "converging") s.family = Family::Converging;
      else bad(origin, "\"family\" must be \"settling\" or \"converging\"");
    }
    if (j.contains("normalization")) {
      const json& n = j["normalization"];
      if (!n.is_object()) bad(origin, "\"normalization\" must be an object");
      if (n.contains("delta")) s.normalization.delta = number_at(n["delta"], origin, "normalization.delta");
      if (n.contains("epsilon")) s.normalization.epsilon = number_at(n["epsilon"], origin, "normalization.epsilon");
    }
    if (j.contains("past_end")) {
      const json& p = j["past_end"];
      if (p == "repeat_last") s.past_end = PastEnd::RepeatLast;
      else if (p == "cycle") s.past_end = PastEnd::Cycle;
      else bad(origin, "\"past_end\" must be \"repeat_last\" or \"cycle\"");
    }
    if (j.contains("default_steps")) {
      if (!j["default_steps"].is_number_integer()) bad(origin, "\"default_steps\" must be an integer");
      s.default_steps = j["default_steps"].get<int>();
    }
    if (j.contains("band")) {
      const json& b = j["band"];
      if (!b.is_array() || b.size() != 2) bad(origin, "\"band\" must be [lo, hi]");
      s.band = Band{number_at(b[0], origin, "band[0]"), number_at(b[1], origin, "band[1]")};
    }
    if (j.contains("metadata")) s.metadata = j["metadata"];
  }
  try {
    s.validate();
  } catch (const UsageError& e) {
    bad(origin, e.what());
  }
  return s;
}

Schedule load_schedule_file(const std::string& path) {
  const json j = read_json_file(path);  // a regular file, nesting limited (metadata is free-form)
  Schedule s = schedule_from_json(j, path);
  if (s.name.empty()) {
    const size_t slash = path.find_last_of('/');
    std::string stem = slash == std::string::npos ? path : path.substr(slash + 1);
    const size_t dot = stem.rfind('.');
    if (dot != std::string::npos && dot > 0) stem = stem.substr(0, dot);
    s.name = stem;
  }
  return s;
}

void save_schedule_file(const Schedule& s, const std::string& path) {
  write_file_atomically(path, schedule_to_json(s).dump(2) + "\n");
}

}  // namespace muspec::ns
