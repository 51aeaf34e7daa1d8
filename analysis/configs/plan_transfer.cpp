#include "configs/plan_transfer.h"

#include <algorithm>

#include "core/error.h"
#include "laws/grouping.h"
#include "model/naming.h"
#include "ns/quality.h"
#include "ns/scalar_map.h"
#include "ns/simulate.h"
#include "configs/precision_check.h"
#include "configs/recommend_laws.h"

namespace muspec {

namespace {

constexpr int kMaxBuckets = 64;
constexpr int kMaxLayers = 100000;

// Does `candidate` need at least as much as `current` (more steps; equal steps: planned for a
// smaller lower bound)?
bool more_conservative(const NsConfigParameter& candidate, const NsConfigEntry& current) {
  if (candidate.setting.steps != current.setting.steps) return candidate.setting.steps > current.setting.steps;
  return candidate.lower_bound < current.lower_bound;
}

// Coverage of the bucket's smallest lower bound by the chosen setting (recommend's rule).
void recheck_requirement(NsConfigEntry& e, double lower, const NsConfig& plan) {
  const ns::Schedule s = schedule_from_setting(e.setting);
  const int k = e.setting.steps;
  const double floor = precision_floor(ns::parse_precision(plan.provenance.precision));
  e.lower_bound = lower;
  e.requirement_met = ns::covers(s, k, std::min(lower, 1.0), plan.provenance.band) && lower >= floor;
  e.image = ns::map_image(s, k, ns::Interval{lower, 1.0});
}

BucketEntry bucket_of(const analysis::GroupSelector& g, const NsConfig& plan, int source_layers) {
  BucketEntry b{g.op_type, g.name, g.depth_lo, g.depth_hi, {}, {}};
  double lower = 1.0;
  for (const NsConfigParameter& p : plan.parameters) {
    if (!g.matches(p.op_type, p.layer, source_layers)) continue;
    if (b.members.empty() || more_conservative(p, b.entry)) b.entry = p;
    lower = std::min(lower, p.lower_bound);
    b.members.push_back(p.name);
  }
  if (!b.members.empty()) {
    recheck_requirement(b.entry, lower, plan);
    b.entry.group = g.name;
    b.entry.bound_kind = "measured";
    b.entry.flops.reset();
    b.entry.default_flops.reset();
  }
  return b;
}

struct Target {
  int layers = 0;
  std::string naming;
  ModelConfig config;
};

Target resolve(const PlanTransfer& t) {
  Target r;
  if (!t.model_config.empty()) r.config = parse_model_config(t.model_config);
  if (t.target_layers && r.config.num_layers > 0 && t.target_layers != r.config.num_layers)
    throw UsageError("--transfer-layers " + std::to_string(t.target_layers) + " contradicts " + t.model_config + " (" +
                     std::to_string(r.config.num_layers) + " layers)");
  r.layers = t.target_layers ? t.target_layers : r.config.num_layers;
  if (r.layers < 1 || r.layers > kMaxLayers)
    throw UsageError("plan transfer: the target's number of blocks must be in [1, 100000] (--transfer-layers L or "
                     "--model-config)");
  r.naming = !t.naming.empty() ? t.naming : !r.config.family.empty() ? r.config.family : "llama";
  if (resolve_family_hint(r.naming) != r.naming || family_muon_ops(r.naming).empty())
    throw UsageError("--naming '" + r.naming + "': not a naming-table family with block matrices (e.g. llama, "
                     "gpt_neox, gpt2, nanogpt, olmo)");
  return r;
}

NsConfigPattern pattern_for(const BucketEntry& b, const std::string& regex, int layer, const std::vector<int64_t>& shape) {
  NsConfigPattern pat;
  static_cast<NsConfigEntry&>(pat) = b.entry;
  pat.regex = regex;
  pat.first_layer = pat.last_layer = layer;
  pat.shape = shape;
  if (shape.size() == 2) {
    pat.flops = setting_flops(pat.setting, shape[0], shape[1]);
    pat.default_flops = setting_flops(default_ns_setting(), shape[0], shape[1]);
  }
  return pat;
}

// Target blocks of one op type, each with the bucket its relative depth falls in.
void add_op_patterns(NsConfig& plan, const std::vector<BucketEntry>& buckets, const std::string& op,
                     const Target& target, std::vector<std::string>* uncovered) {
  const auto regex = weight_name_regex(target.naming, op);
  if (!regex) {
    if (uncovered) uncovered->push_back(op + ": the naming family " + target.naming + " has no in-block name for it");
    return;
  }
  const std::vector<int64_t> shape = op_shape(target.config, op);
  std::vector<int> missing;
  for (int layer = 0; layer < target.layers; ++layer) {
    const BucketEntry* hit = nullptr;
    for (const BucketEntry& b : buckets) {
      const analysis::GroupSelector sel{b.group, b.op_type, b.depth_lo, b.depth_hi, -1};
      if (sel.matches(op, layer, target.layers)) hit = &b;
    }
    if (!hit || hit->members.empty()) {
      missing.push_back(layer);
      continue;
    }
    NsConfigPattern* last = plan.patterns.empty() ? nullptr : &plan.patterns.back();
    if (last && last->regex == *regex && last->group == hit->group && last->last_layer == layer - 1) {
      last->last_layer = layer;
      continue;
    }
    plan.patterns.push_back(pattern_for(*hit, *regex, layer, shape));
  }
  if (uncovered && !missing.empty())
    uncovered->push_back(op + " in target blocks " + ranges_text(missing) +
                         ": no measured matrix in their depth bucket; the default applies");
}

nlohmann::json transfer_json(const std::vector<BucketEntry>& buckets, const PlanTransfer& t, const Target& target) {
  nlohmann::json list = nlohmann::json::array();
  for (const BucketEntry& b : buckets) {
    if (b.members.empty()) continue;
    list.push_back({{"group", b.group}, {"steps", b.entry.setting.steps}, {"lower_bound", b.entry.lower_bound},
                    {"requirement_met", b.entry.requirement_met}, {"members", b.members}});
  }
  return {{"source_layers", t.source_layers}, {"target_layers", target.layers}, {"depth_buckets", t.depth_buckets},
          {"aggregation", "most steps among the bucket's planned matrices; lower bound = the bucket's smallest"},
          {"buckets", list}};
}

}  // namespace

std::vector<BucketEntry> plan_buckets(const NsConfig& plan, int depth_buckets, int source_layers) {
  if (depth_buckets < 1 || depth_buckets > kMaxBuckets)
    throw UsageError("--depth-buckets must be in [1, 64] (got " + std::to_string(depth_buckets) + ")");
  if (source_layers < 1) throw UsageError("plan transfer: the measured model's number of blocks is unknown");
  std::vector<std::string> ops;
  for (const NsConfigParameter& p : plan.parameters)
    if (p.layer >= 0) ops.push_back(p.op_type);
  std::vector<BucketEntry> out;
  for (const analysis::GroupSelector& g :
       analysis::make_groups("optype,depth:" + std::to_string(depth_buckets), analysis::ordered_op_types(ops)))
    out.push_back(bucket_of(g, plan, source_layers));
  return out;
}

void transfer_plan(NsConfig& plan, const PlanTransfer& t, std::vector<std::string>* uncovered) {
  const Target target = resolve(t);
  const std::vector<BucketEntry> buckets = plan_buckets(plan, t.depth_buckets, t.source_layers);
  plan.patterns.clear();
  std::vector<std::string> ops;
  for (const BucketEntry& b : buckets)
    if (ops.empty() || ops.back() != b.op_type) ops.push_back(b.op_type);
  for (const std::string& op : ops) add_op_patterns(plan, buckets, op, target, uncovered);
  plan.parameters.clear();
  plan.extra["target"] = {{"naming", target.naming}, {"layers", target.layers}};
  plan.extra["plan"]["transfer"] = transfer_json(buckets, t, target);
  if (!t.model_config.empty()) plan.provenance.inputs.push_back(t.model_config);
}

}  // namespace muspec
