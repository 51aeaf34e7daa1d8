// plan --transfer-layers: a plan of a small model rewritten as (op type, depth bucket) name
// patterns for a deeper one. Oracle: the bucket of every target block and the most steps of the
// source blocks in it, worked out by hand below; names resolved with std::regex by the trainer
// lookup rule (first pattern whose regex full-matches and whose block range holds the index);
// requirements re-derived by mapping a grid of singular values through the polynomials.
#include <catch2/catch.hpp>

#include <map>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "core/error.h"
#include "ns/catalog.h"
#include "ns/scalar_map.h"
#include "configs/ns_config.h"
#include "configs/plan_transfer.h"

using namespace muspec;

namespace {

const char* kQName = "model.layers.%d.self_attn.q_proj.weight";
const char* kDownName = "model.layers.%d.mlp.down_proj.weight";

std::string name_of(const char* fmt, int layer) {
  char buf[96];
  std::snprintf(buf, sizeof buf, fmt, layer);
  return buf;
}

NsConfigParameter planned(const std::string& op, const char* fmt, int layer, int steps, double lower) {
  NsConfigParameter p;
  p.name = name_of(fmt, layer);
  p.op_type = op;
  p.layer = layer;
  p.group = "layer " + std::to_string(layer);
  p.lower_bound = lower;
  p.bound_kind = "measured";
  p.setting = setting_from_schedule(ns::builtin_schedule("keller"), steps);
  p.shape = {16, 16};
  return p;
}

// A 4-block plan (relative depths 0, 1/3, 2/3, 1): q steps 3 5 4 2, down steps 2 2 6 3.
NsConfig four_block_plan() {
  NsConfig c;
  c.provenance.mode = "plan";
  c.provenance.family = "keller";
  c.provenance.band = ns::Band{0.68, 1.21};
  c.provenance.precision = "f64";
  const int q[4] = {3, 5, 4, 2}, down[4] = {2, 2, 6, 3};
  const double lq[4] = {0.30, 0.02, 0.05, 0.40}, ldown[4] = {0.5, 0.45, 0.001, 0.2};
  for (int l = 0; l < 4; ++l) c.parameters.push_back(planned("q", kQName, l, q[l], lq[l]));
  for (int l = 0; l < 4; ++l) c.parameters.push_back(planned("down", kDownName, l, down[l], ldown[l]));
  c.extra["plan"] = {{"by", "layer"}};
  return c;
}

// The trainer lookup rule on the written patterns: the entry a name resolves to, if any.
std::optional<NsConfigPattern> resolve(const NsConfig& c, const std::string& name) {
  for (const NsConfigPattern& p : c.patterns) {
    std::smatch m;
    if (!std::regex_match(name, m, std::regex(p.regex))) continue;
    const int layer = std::stoi(m[1].str());
    if (layer >= p.first_layer && layer <= p.last_layer) return p;
  }
  return std::nullopt;
}

// Every s on a fine grid of [lower, 1] lands in the band (independent of ns::covers).
bool grid_covered(const NsSetting& s, double lower, const ns::Band& band) {
  const ns::Schedule sched = schedule_from_setting(s);
  for (int i = 0; i <= 4000; ++i) {
    const double x = lower + (1.0 - lower) * i / 4000.0;
    const double y = ns::map_value(sched, s.steps, x);
    if (y < band.lo || y > band.hi) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("plan transfer: every block of a deeper model gets the most steps of its depth bucket", "[plan_transfer]") {
  NsConfig c = four_block_plan();
  PlanTransfer t;
  t.depth_buckets = 2;  // source blocks 0,1 -> bucket 0; 2,3 -> bucket 1
  t.source_layers = 4;
  t.target_layers = 9;  // rel = b/8: blocks 0-3 bucket 0, 4-8 bucket 1 (0.5 opens bucket 1)
  std::vector<std::string> uncovered;
  transfer_plan(c, t, &uncovered);
  CHECK(uncovered.empty());
  CHECK(c.parameters.empty());
  CHECK(ns_config_problem(ns_config_to_json(c)).empty());
  const std::map<std::pair<std::string, int>, int> want_steps = {
      {{"q", 0}, 5}, {{"q", 1}, 4}, {{"down", 0}, 2}, {{"down", 1}, 6}};
  const std::map<std::pair<std::string, int>, double> want_lower = {
      {{"q", 0}, 0.02}, {{"q", 1}, 0.05}, {{"down", 0}, 0.45}, {{"down", 1}, 0.001}};
  for (int b = 0; b < 9; ++b) {
    const int bucket = b < 4 ? 0 : 1;
    for (const auto& [op, fmt] : {std::pair<std::string, const char*>{"q", kQName}, {"down", kDownName}}) {
      const auto hit = resolve(c, name_of(fmt, b));
      INFO(op << " block " << b);
      REQUIRE(hit.has_value());
      CHECK(hit->setting.steps == want_steps.at({op, bucket}));
      CHECK(hit->lower_bound == want_lower.at({op, bucket}));
      CHECK(hit->op_type == op);
    }
  }
  CHECK(!resolve(c, name_of(kQName, 9)).has_value());  // beyond the target depth
  CHECK(c.patterns.size() == 4);                        // consecutive blocks merged per bucket
  CHECK(c.extra["target"]["layers"] == 9);
  CHECK(c.extra["plan"]["transfer"]["buckets"].size() == 4);
}

TEST_CASE("plan transfer: the requirement is re-checked against the bucket's smallest lower bound", "[plan_transfer]") {
  NsConfig c = four_block_plan();
  PlanTransfer t{2, 4, 6, "", ""};
  transfer_plan(c, t);
  for (const NsConfigPattern& p : c.patterns) {
    INFO(p.group << " steps " << p.setting.steps << " lower " << p.lower_bound);
    CHECK(p.requirement_met == grid_covered(p.setting, p.lower_bound, c.provenance.band));
  }
  // q bucket 0 (blocks 0-1): 5 steps (block 1's) for the bucket's lower bound 0.02 (also block 1's).
  const auto q0 = resolve(c, name_of(kQName, 0));
  REQUIRE(q0.has_value());
  CHECK(q0->setting.steps == 5);
  CHECK(q0->requirement_met == grid_covered(q0->setting, 0.02, c.provenance.band));
}

TEST_CASE("plan transfer: a tie in steps keeps the entry planned for the smaller lower bound", "[plan_transfer]") {
  NsConfig c;
  c.provenance.family = "designed";
  c.provenance.band = ns::Band{0.68, 1.21};
  NsConfigParameter a = planned("q", kQName, 0, 4, 0.3), b = planned("q", kQName, 1, 4, 0.1);
  b.setting.coefficients[0] = ns::OddPoly{3.0, -3.2, 1.2};  // distinguishable polynomials
  c.parameters = {a, b};
  transfer_plan(c, PlanTransfer{1, 2, 5, "", ""});
  REQUIRE(c.patterns.size() == 1);
  CHECK(c.patterns[0].setting.coefficients[0].a == 3.0);
  CHECK(c.patterns[0].lower_bound == 0.1);
  CHECK(c.patterns[0].first_layer == 0);
  CHECK(c.patterns[0].last_layer == 4);
}

TEST_CASE("plan transfer: empty buckets of a shallow source are reported, not guessed", "[plan_transfer]") {
  NsConfig c;
  c.provenance.band = ns::Band{0.68, 1.21};
  c.parameters = {planned("q", kQName, 0, 3, 0.3), planned("q", kQName, 1, 5, 0.2)};
  // 2 source blocks: relative depths 0 and 1 fill buckets 0 and 3 of 4; target 8 blocks:
  // rel = b/7, buckets 1-2 hold blocks 2-5 ([0.25, 0.75)).
  std::vector<std::string> uncovered;
  transfer_plan(c, PlanTransfer{4, 2, 8, "", ""}, &uncovered);
  REQUIRE(uncovered.size() == 1);
  CHECK(uncovered[0].find("q in target blocks 2-5:") != std::string::npos);
  for (int b = 0; b < 8; ++b) {
    INFO("block " << b);
    const auto hit = resolve(c, name_of(kQName, b));
    if (b >= 2 && b <= 5) {
      CHECK(!hit.has_value());
    } else {
      REQUIRE(hit.has_value());
      CHECK(hit->setting.steps == (b < 2 ? 3 : 5));
    }
  }
}

TEST_CASE("plan transfer: bad depth counts are usage errors", "[plan_transfer]") {
  NsConfig c = four_block_plan();
  CHECK_THROWS_AS(transfer_plan(c, PlanTransfer{0, 4, 8, "", ""}), UsageError);
  CHECK_THROWS_AS(transfer_plan(c, PlanTransfer{65, 4, 8, "", ""}), UsageError);
  CHECK_THROWS_AS(transfer_plan(c, PlanTransfer{4, 0, 8, "", ""}), UsageError);
  CHECK_THROWS_AS(transfer_plan(c, PlanTransfer{4, 4, 0, "", ""}), UsageError);
  CHECK_THROWS_AS(transfer_plan(c, PlanTransfer{4, 4, 8, "no-such-family", ""}), UsageError);
}
