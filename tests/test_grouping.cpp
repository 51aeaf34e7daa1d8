// Grouping of matrices across model sizes: built-in specs partition the blocks, names follow
// docs/scaling-laws.md, group files are validated.
#include <catch2/catch.hpp>

#include <algorithm>

#include "core/error.h"
#include "laws/grouping.h"
#include "input_error_check.h"
#include "test_support.h"

using namespace muspec::analysis;

namespace {

size_t groups_matching(const std::vector<GroupSelector>& groups, const std::string& op, int64_t layer, int64_t layers) {
  return static_cast<size_t>(std::count_if(groups.begin(), groups.end(),
                                           [&](const GroupSelector& g) { return g.matches(op, layer, layers); }));
}

}  // namespace

TEST_CASE("default grouping: operator type x depth quarter, in display order", "[grouping]") {
  const auto groups = make_groups("optype,depth:4", {"down", "q", "k", "down", "mystery"});
  REQUIRE(groups.size() == 16);
  CHECK(groups[0].name == "q/depth:0-0.25");
  CHECK(groups[3].name == "q/depth:0.75-1");
  CHECK(groups[4].name == "k/depth:0-0.25");
  CHECK(groups[8].op_type == "down");
  CHECK(groups[12].op_type == "mystery");
  CHECK(groups[5].depth_lo == 0.25);
  CHECK(groups[5].depth_hi == 0.5);
}

TEST_CASE("depth buckets partition the blocks of any model", "[grouping]") {
  for (int buckets = 1; buckets <= 7; ++buckets) {
    const auto groups = make_groups("depth:" + std::to_string(buckets), {});
    REQUIRE(groups.size() == static_cast<size_t>(buckets));
    for (int64_t layers = 1; layers <= 40; ++layers)
      for (int64_t layer = 0; layer < layers; ++layer) {
        INFO(buckets << " buckets, layer " << layer << " of " << layers);
        CHECK(groups_matching(groups, "q", layer, layers) == 1);
      }
  }
  // rel_depth 0.25 exactly (layer 1 of 5) starts the second quarter; the last block is in the last.
  const auto quarters = make_groups("depth:4", {});
  CHECK(quarters[1].matches("v", 1, 5));
  CHECK(quarters[3].matches("v", 4, 5));
  CHECK_FALSE(quarters[0].matches("v", 1, 5));
}

TEST_CASE("operator type and blocks outside the model", "[grouping]") {
  const auto groups = make_groups("optype,depth:2", {"q", "o"});
  CHECK(groups_matching(groups, "q", 3, 8) == 1);
  CHECK(groups_matching(groups, "gate", 3, 8) == 0);  // not in the data's op types
  CHECK(groups_matching(groups, "q", -1, 8) == 0);    // outside the blocks
  CHECK(groups_matching(groups, "q", 0, 0) == 0);     // unknown depth
  CHECK(groups_matching(groups, "q", 8, 8) == 0);
}

TEST_CASE("layer-from-end groups take the last blocks individually", "[grouping]") {
  const auto groups = make_groups("layer-from-end:2", {});
  REQUIRE(groups.size() == 2);
  CHECK(groups[0].name == "layer-from-end:0");
  CHECK(groups[0].matches("down", 11, 12));
  CHECK(groups[1].matches("q", 10, 12));
  CHECK(groups_matching(groups, "q", 9, 12) == 0);
  const auto per_op = make_groups("optype,layer-from-end:1", {"down", "q"});
  REQUIRE(per_op.size() == 2);
  CHECK(per_op[0].name == "q/layer-from-end:0");
  CHECK(per_op[1].matches("down", 5, 6));
  CHECK_FALSE(per_op[1].matches("q", 5, 6));
}

TEST_CASE("bad group specs are usage errors", "[grouping]") {
  for (const char* bad : {"", "depth:0", "depth:x", "depth", "layers:3", "depth:4,layer-from-end:2", "optype,,depth:2"}) {
    INFO(bad);
    CHECK_THROWS_AS(make_groups(bad, {"q"}), muspec::UsageError);
  }
}

TEST_CASE("group files", "[grouping][io]") {
  muspec_test::TempDir dir("groups");
  const std::string path = dir.file("groups.json");
  muspec_test::write_bytes(path, R"({"format": "muspec.groups", "version": 1, "groups": [
      {"name": "early-attn-q", "op_type": "q", "depth": [0, 0.5]},
      {"name": "last-down", "op_type": "down", "layer_from_end": 0},
      {"name": "everything"}]})");
  const auto groups = make_groups(path, {});
  REQUIRE(groups.size() == 3);
  CHECK(groups[0].matches("q", 2, 10));
  CHECK_FALSE(groups[0].matches("q", 7, 10));
  CHECK(groups[1].matches("down", 9, 10));
  CHECK_FALSE(groups[1].matches("down", 8, 10));
  CHECK(groups[2].matches("gate", 4, 10));

  muspec::SpectrumRecord r;
  r.op_type = "q", r.layer = 1, r.num_layers = 10;
  CHECK(groups_of(groups, r) == std::vector<size_t>{0, 2});

  const std::string bad = dir.file("bad.json");
  muspec_test::write_bytes(bad, R"({"format": "muspec.groups", "version": 1, "groups": [{"op_type": "q"}]})");
  muspec_test::expect_input_error([&] { make_groups(bad, {}); }, bad, "", {"groups[0].name"});
  muspec_test::write_bytes(bad, R"({"format": "muspec.groups", "version": 1, "groups": [{"name": "a", "depth": [0.5, 0.2]}]})");
  muspec_test::expect_input_error([&] { make_groups(bad, {}); }, bad, "", {"groups[0].depth"});
  muspec_test::write_bytes(bad, R"({"format": "other", "version": 1, "groups": []})");
  muspec_test::expect_input_error([&] { make_groups(bad, {}); }, bad, "", {"format"});
  // Wrong-typed fields: an InputError naming the file and the field, not a json type_error.
  for (const char* doc : {R"({"format": 7, "version": 1, "groups": [{"name": "a"}]})",
                          R"({"format": ["muspec.groups"], "version": 1, "groups": [{"name": "a"}]})",
                          R"({"format": null, "version": 1, "groups": [{"name": "a"}]})",
                          R"({"version": 1, "groups": [{"name": "a"}]})"}) {
    INFO(doc);
    muspec_test::write_bytes(bad, doc);
    muspec_test::expect_input_error([&] { make_groups(bad, {}); }, bad, "", {"format", "muspec.groups"});
  }
  muspec_test::write_bytes(bad, R"({"format": "muspec.groups", "version": 1, "groups": [{"name": "a", "layer_from_end": 4294967296}]})");
  muspec_test::expect_input_error([&] { make_groups(bad, {}); }, bad, "", {"groups[0].layer_from_end"});
  muspec_test::write_bytes(bad, "[1, 2]");
  muspec_test::expect_input_error([&] { make_groups(bad, {}); }, bad, "", {"JSON object"});
  muspec_test::write_bytes(bad, "{not json");
  muspec_test::expect_input_error([&] { make_groups(bad, {}); }, bad, "", {"not valid JSON"});
}
