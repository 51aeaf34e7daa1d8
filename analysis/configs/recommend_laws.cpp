#include "configs/recommend_laws.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "core/error.h"
#include "laws/laws.h"
#include "configs/precision_check.h"
#include "model/model_config.h"
#include "model/naming.h"

namespace muspec {

namespace {

const std::vector<std::string>& muon_op_order() {
  static const std::vector<std::string> ops = {"q", "k", "v", "qkv", "o", "gate", "up", "gate_up", "down"};
  return ops;
}

const NamingRule* weight_rule(const std::string& family, const std::string& op_type) {
  for (const NamingRule& r : naming_table())
    if (family == r.family && r.layer_group == 1 && op_type == operator_type_name(r.op)) return &r;
  return nullptr;
}

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

const char* kAnyPrefix = R"((?:.*\.)?)";

}  // namespace

std::optional<std::string> weight_name_regex(const std::string& family, const std::string& op_type) {
  const NamingRule* r = weight_rule(family, op_type);
  if (!r) return std::nullopt;
  std::string re = r->pattern;
  const std::string lead = R"((?:^|\.))", weight_or_bias = R"(\.(?:weight|bias)$)";
  if (starts_with(re, lead)) re = kAnyPrefix + re.substr(lead.size());
  if (ends_with(re, weight_or_bias)) re = re.substr(0, re.size() - weight_or_bias.size()) + R"(\.weight)";
  else if (ends_with(re, "$")) re.pop_back();
  return re;
}

std::vector<std::string> family_muon_ops(const std::string& family) {
  std::vector<std::string> out;
  for (const std::string& op : muon_op_order())
    if (weight_rule(family, op)) out.push_back(op);
  return out;
}

std::optional<std::string> concrete_name(const std::string& regex, int layer, const std::string& prefix) {
  std::string re = regex;
  if (starts_with(re, kAnyPrefix)) re = re.substr(std::string(kAnyPrefix).size());
  const size_t cap = re.find(R"((\d+))");
  if (cap == std::string::npos) return std::nullopt;
  re.replace(cap, 5, std::to_string(layer));
  std::string name;
  for (size_t i = 0; i < re.size(); ++i) {
    const char ch = re[i];
    if (ch == '\\' && i + 1 < re.size() && re[i + 1] == '.') {
      name += '.', ++i;
    } else if (std::string("()[]{}?*+|^$\\").find(ch) != std::string::npos) {
      return std::nullopt;  // not a literal
    } else {
      name += ch;
    }
  }
  return prefix + name;
}

namespace {

using analysis::LawPrediction;

}  // namespace

std::vector<int64_t> op_shape(const ModelConfig& c, const std::string& op) {
  const int64_t h = c.hidden_size, hd = c.head_dim, q = c.num_heads * hd, kv = c.num_kv_heads * hd;
  const int64_t ffn = c.intermediate_size;
  if (h <= 0) return {};
  if (op == "q" && q > 0) return {q, h};
  if ((op == "k" || op == "v") && kv > 0) return {kv, h};
  if (op == "qkv" && q > 0 && kv > 0) return {q + 2 * kv, h};
  if (op == "o" && q > 0) return {h, q};
  if ((op == "gate" || op == "up") && ffn > 0) return {ffn, h};
  if (op == "gate_up" && ffn > 0) return {2 * ffn, h};
  if (op == "down" && ffn > 0) return {h, ffn};
  return {};
}

namespace {

std::vector<LawPrediction> usable_predictions(const analysis::LawSet& laws, const std::string& path,
                                              const LawsTarget& t, double quantile) {
  std::vector<LawPrediction> out;
  std::set<std::string> seen;
  for (const LawPrediction& p : analysis::predict_laws(laws, t.params, t.level)) {
    char buf[80];
    std::snprintf(buf, sizeof buf, "%g (%s)", p.quantile_level, p.scale.c_str());
    seen.insert(buf);
    if (p.scale == "rel_frob" && std::abs(p.quantile_level - quantile) <= 1e-9) out.push_back(p);
  }
  if (out.empty()) {
    std::string list;
    for (const auto& s : seen) list += (list.empty() ? "" : ", ") + s;
    char q[32];
    std::snprintf(q, sizeof q, "%g", quantile);
    throw UsageError(path + ": no fitted law at quantile " + q + " on the rel_frob scale (sigma/||G||_F, what NS "
                     "sees); available: " + (list.empty() ? std::string("none") : list) + "; use --quantile");
  }
  return out;
}

// The most conservative (smallest per-matrix lower bound) law covering one operator in one block.
const LawPrediction* binding_law(const std::vector<LawPrediction>& preds, const std::string& op, int layer,
                                 int layers) {
  const LawPrediction* best = nullptr;
  for (const LawPrediction& p : preds)
    if (p.group.matches(op, layer, layers) && (!best || p.member_lower < best->member_lower)) best = &p;
  return best;
}

constexpr int kMaxLayers = 100000;

struct Resolved {
  int layers = 0;
  std::string naming;
  ModelConfig config;
};

Resolved resolve_target(const LawsTarget& t) {
  Resolved r;
  if (t.layers && (*t.layers < 1 || *t.layers > kMaxLayers)) throw UsageError("--layers must be in [1, 100000]");
  if (!t.model_config.empty()) r.config = parse_model_config(t.model_config);
  if (t.layers && r.config.num_layers > 0 && *t.layers != r.config.num_layers)
    throw UsageError("--layers " + std::to_string(*t.layers) + " contradicts " + t.model_config + " (" +
                     std::to_string(r.config.num_layers) + " layers)");
  r.layers = t.layers ? *t.layers : r.config.num_layers;
  if (!t.layers && !t.model_config.empty() && r.config.num_layers > kMaxLayers)
    throw UsageError(t.model_config + ": " + std::to_string(r.config.num_layers) + " layers; at most 100000 are supported");
  if (r.layers < 1)
    throw UsageError("recommend --laws: the number of blocks is unknown: give --layers L or --model-config");
  r.naming = !t.naming.empty() ? t.naming : !r.config.family.empty() ? r.config.family : "llama";
  if (resolve_family_hint(r.naming) != r.naming || family_muon_ops(r.naming).empty())
    throw UsageError("--naming '" + r.naming + "': not a naming-table family with block matrices (e.g. llama, "
                     "gpt_neox, gpt2, nanogpt, olmo, olmo-core, phi3, megatron, modded-nanogpt)");
  return r;
}

NsConfigPattern make_pattern(const LawPrediction& p, const std::string& op, const std::string& regex, int layer,
                             double lower, const ScheduleRule::Choice& c, const std::vector<int64_t>& shape) {
  NsConfigPattern pat;
  pat.regex = regex;
  pat.first_layer = pat.last_layer = layer;
  pat.op_type = op;
  pat.group = p.group.name;
  pat.setting = c.setting;
  pat.lower_bound = lower;
  pat.bound_kind = "predicted_lower";
  pat.requirement_met = c.met;
  pat.image = c.image;
  pat.predicted = p.predicted;
  pat.extrapolated = p.extrapolated;
  pat.shape = shape;
  if (shape.size() == 2) {
    pat.flops = setting_flops(c.setting, shape[0], shape[1]);
    pat.default_flops = setting_flops(default_ns_setting(), shape[0], shape[1]);
  }
  return pat;
}

}  // namespace

std::string ranges_text(const std::vector<int>& v) {
  std::string out;
  for (size_t i = 0; i < v.size();) {
    size_t j = i;
    while (j + 1 < v.size() && v[j + 1] == v[j] + 1) ++j;
    out += (out.empty() ? "" : ", ") + std::to_string(v[i]) + (j > i ? "-" + std::to_string(v[j]) : "");
    i = j + 1;
  }
  return out;
}

NsConfig recommend_predicted(const std::string& laws_path, const LawsTarget& t, const RecommendOptions& o,
                             std::vector<std::string>* uncovered, std::vector<std::string>* notes) {
  check_recommend_options(o);
  if (!(t.params >= analysis::kMinModelParams && t.params <= analysis::kMaxModelParams))
    throw UsageError("--params must be a model size in [1e3, 1e15] parameters");
  const Resolved r = resolve_target(t);
  const analysis::LawSet laws = analysis::read_laws_json(laws_path);
  if (notes) notes->insert(notes->end(), laws.notes.begin(), laws.notes.end());
  const std::vector<LawPrediction> preds = usable_predictions(laws, laws_path, t, o.quantile);
  const ScheduleRule rule(o.family, o.band, o.max_steps);

  NsConfig cfg;
  cfg.provenance.mode = "predicted";
  cfg.provenance.inputs = {laws_path};
  if (!t.model_config.empty()) cfg.provenance.inputs.push_back(t.model_config);
  cfg.provenance.quantile = o.quantile;
  cfg.provenance.family = o.family;
  cfg.provenance.band = rule.band();
  cfg.provenance.margin = o.margin;
  cfg.provenance.target_params = t.params;
  cfg.provenance.level = t.level;
  cfg.provenance.precision = ns::precision_name(o.precision);
  cfg.provenance.precision_band = band_at_precision(rule.band(), o.precision);
  cfg.extra["target"] = {{"naming", r.naming}, {"layers", r.layers}, {"params", t.params}};
  for (const std::string& op : family_muon_ops(r.naming)) {
    const std::string regex = *weight_name_regex(r.naming, op);
    const std::vector<int64_t> shape = op_shape(r.config, op);
    std::vector<int> missing;
    for (int layer = 0; layer < r.layers; ++layer) {
      const LawPrediction* p = binding_law(preds, op, layer, r.layers);
      if (!p) {
        missing.push_back(layer);
        continue;
      }
      const double lower = p->member_lower / o.margin;  // one matrix, not the group mean
      NsConfigPattern* last = cfg.patterns.empty() ? nullptr : &cfg.patterns.back();
      if (last && last->regex == regex && last->group == p->group.name && last->lower_bound == lower &&
          last->last_layer == layer - 1) {
        last->last_layer = layer;  // extend the run of blocks
        continue;
      }
      cfg.patterns.push_back(make_pattern(*p, op, regex, layer, lower, rule.choose(lower), shape));
      if (lower < precision_floor(o.precision)) cfg.patterns.back().requirement_met = false;  // rounding decides there
    }
    if (uncovered && !missing.empty())
      uncovered->push_back(op + " in blocks " + ranges_text(missing) + ": no fitted law (refused or absent); the default applies");
  }
  return cfg;
}

}  // namespace muspec
