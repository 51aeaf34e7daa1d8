#include "configs/torch_groups.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <tuple>

#include "core/build_config.h"
#include "core/error.h"
#include "ns/catalog.h"
#include "ns/cost.h"
#include "ns/quality.h"
#include "configs/recommend_laws.h"

namespace muspec {

using nlohmann::json;

namespace {

std::string g(double x, int digits = 4) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, x);
  return buf;
}

std::string triple_text(const ns::OddPoly& p) {
  return "(" + g(p.a, 6) + ", " + g(p.b, 6) + ", " + g(p.c, 6) + ")";
}

// One triple repeated, normalized as torch does (no δ).
ns::Schedule repeated(const ns::OddPoly& p, double eps) {
  ns::Schedule s;
  s.name = "repeated";
  s.polys = {p};
  s.normalization = {0.0, eps};
  return s;
}

bool expressible(const NsSetting& s) {
  if (s.normalization.delta != 0.0) return false;
  return std::all_of(s.coefficients.begin(), s.coefficients.end(),
                     [&](const ns::OddPoly& p) { return p == s.coefficients.front(); });
}

// Keller Jordan's triple first (torch's default), then the entry's own, then the catalog's.
std::vector<ns::OddPoly> candidate_triples(const NsSetting& s) {
  std::vector<ns::OddPoly> out = {ns::builtin_schedule("keller").polys.front()};
  auto add = [&](const ns::OddPoly& p) {
    if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
  };
  for (const auto& p : s.coefficients) add(p);
  for (const auto& name : ns::catalog_names())
    for (const auto& p : ns::builtin_schedule(name).polys) add(p);
  return out;
}

// The cost used to rank candidates: flops on the entry's shape when known, else matrix products.
double cost_of(const ns::OddPoly& p, int steps, const std::vector<int64_t>& shape) {
  if (shape.size() == 2) return steps * ns::step_flops(p, shape[0], shape[1]);
  return steps * static_cast<double>(ns::step_matmuls(p));
}

// The lower bound the configured setting is asked to cover: its own requirement when it meets
// it, else what it actually covers. nullopt when it covers nothing.
std::optional<double> requirement(const NsConfigEntry& e, const ns::Band& band) {
  if (e.requirement_met) return std::min(std::max(e.lower_bound, 1e-300), 1.0);
  return ns::coverage_lower(schedule_from_setting(e.setting), e.setting.steps, band);
}

TorchGroup approximate(const NsConfigEntry& e, const std::vector<int64_t>& shape, const ns::Band& band,
                       int max_steps, const std::string& who, std::vector<std::string>* notes) {
  TorchGroup t;
  t.eps = e.setting.normalization.epsilon;
  t.exact = false;
  const std::string why = e.setting.normalization.delta != 0.0 && expressible({e.setting.steps, e.setting.coefficients, {}})
                              ? "normalization delta " + g(e.setting.normalization.delta) + " cannot be expressed"
                              : "a per-step schedule cannot be expressed";
  const auto need = requirement(e, band);
  std::optional<std::pair<double, ns::OddPoly>> best;
  int best_k = 0;
  for (const ns::OddPoly& p : need ? candidate_triples(e.setting) : std::vector<ns::OddPoly>{}) {
    const auto k = ns::min_steps(repeated(p, t.eps), *need, band, std::min(max_steps, 99));
    if (!k) continue;
    const double c = cost_of(p, *k, shape);
    if (!best || c < best->first) best = {c, p}, best_k = *k;
  }
  if (best) {
    t.coefficients = best->second;
    t.steps = best_k;
    t.approximation = why + " (torch.optim.Muon takes one triple, no delta); replaced by the fewest repeats of one "
                      "fixed triple meeting the same requirement: " + std::to_string(t.steps) + " x " +
                      triple_text(t.coefficients) + " brings every s = sigma/||G||_F in [lower_bound, 1] into [" +
                      g(band.lo) + ", " + g(band.hi) + "]";
  } else {
    t.coefficients = ns::builtin_schedule("keller").polys.front();
    t.steps = std::min(std::max(e.setting.steps, 5), 99);
    t.requirement_met = false;
    t.approximation = why + "; no single triple repeated up to --max-steps meets the requirement: "
                      "Keller Jordan's triple kept (requirement NOT met)";
  }
  if (notes)
    notes->push_back(who + ": " + std::to_string(e.setting.steps) + "-step schedule -> " + std::to_string(t.steps) +
                     " x " + triple_text(t.coefficients) +
                     (need ? " (covers s >= " + g(*need) + ")" : std::string(" (no coverage)")) +
                     (t.requirement_met ? "" : " REQUIREMENT NOT MET"));
  return t;
}

TorchGroup torch_setting(const NsConfigEntry& e, const std::vector<int64_t>& shape, const ns::Band& band,
                         int max_steps, const std::string& who, std::vector<std::string>* notes) {
  if (!expressible(e.setting)) return approximate(e, shape, band, max_steps, who, notes);
  TorchGroup t;
  t.coefficients = e.setting.coefficients.front();
  t.steps = e.setting.steps;
  t.eps = e.setting.normalization.epsilon;
  t.requirement_met = e.requirement_met;
  return t;
}

using GroupKey = std::tuple<double, double, double, int, double, bool, bool>;

GroupKey key_of(const TorchGroup& t) {
  return {t.coefficients.a, t.coefficients.b, t.coefficients.c, t.steps, t.eps, t.exact, t.requirement_met};
}

}  // namespace

std::string default_name_prefix(const std::string& family) {
  if (family == "llama") return "model.";
  if (family == "gpt_neox") return "gpt_neox.";
  if (family == "gpt2") return "transformer.";
  return "";
}

std::vector<TorchGroup> torch_groups(const NsConfig& config, int max_steps, const std::string& name_prefix,
                                     std::vector<std::string>* notes) {
  const ns::Band band = config.provenance.band;
  std::vector<TorchGroup> groups;
  std::map<GroupKey, size_t> index;
  auto merge = [&](TorchGroup t) -> TorchGroup& {
    const auto [it, fresh] = index.emplace(key_of(t), groups.size());
    if (fresh) groups.push_back(std::move(t));
    return groups[it->second];
  };
  for (const auto& p : config.parameters)
    merge(torch_setting(p, p.shape, band, max_steps, p.name, notes)).params.push_back(p.name);
  for (const auto& p : config.patterns) {
    TorchGroup& t = merge(torch_setting(p, p.shape, band, max_steps, p.regex, notes));
    t.patterns.push_back({{"regex", p.regex}, {"layers", {p.first_layer, p.last_layer}}});
    for (int layer = p.first_layer; layer <= p.last_layer; ++layer) {
      const auto name = concrete_name(p.regex, layer, name_prefix);
      if (name) t.params.push_back(*name);
      else if (notes) notes->push_back(p.regex + ": not a literal name pattern; the group lists the pattern only");
      if (!name) break;
    }
  }
  return groups;
}

json torch_groups_to_json(const NsConfig& c, const std::vector<TorchGroup>& groups) {
  json j = {{"format", kTorchGroupsFormat},
            {"version", 1},
            {"muspec_version", kVersion},
            {"created", iso_utc_now()},
            {"command", c.provenance.command},
            {"provenance", provenance_to_json(c.provenance)}};
  json arr = json::array();
  for (const TorchGroup& t : groups) {
    json o = {{"params", t.params},
              {"ns_coefficients", {t.coefficients.a, t.coefficients.b, t.coefficients.c}},
              {"ns_steps", t.steps},
              {"eps", t.eps},
              {"exact", t.exact},
              {"requirement_met", t.requirement_met},
              {"approximation", t.approximation}};
    if (!t.patterns.empty()) o["patterns"] = t.patterns;
    arr.push_back(o);
  }
  j["groups"] = arr;
  return j;
}

ConfigFormat parse_config_format(const std::string& s) {
  if (s == "muspec") return ConfigFormat::Muspec;
  if (s == "torch-groups") return ConfigFormat::TorchGroups;
  throw UsageError("--format '" + s + "': expected muspec or torch-groups");
}

void write_config(const NsConfig& config, ConfigFormat format, int max_steps, const std::string& name_prefix,
                  const std::string& path, std::vector<std::string>* notes) {
  if (format == ConfigFormat::Muspec) return write_json_atomically(path, ns_config_to_json(config));
  const std::string family = config.extra.contains("target") ? config.extra["target"].value("naming", "") : "";
  const std::string prefix = name_prefix.empty() ? default_name_prefix(family) : name_prefix;
  write_json_atomically(path, torch_groups_to_json(config, torch_groups(config, max_steps, prefix, notes)));
}

}  // namespace muspec
