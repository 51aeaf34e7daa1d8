// Schedules as values: the built-in catalog against the published tables (reference §3.1,
// §5.8, §7.1, §7.4), the past-end rule, the JSON file format and its error messages.
#include <catch2/catch.hpp>

#include <cmath>

#include "core/error.h"
#include "ns/catalog.h"
#include "ns/cost.h"
#include "ns/schedule.h"
#include "test_support.h"

using namespace muspec::ns;

TEST_CASE("ns: polar-express catalog entry is the published table scaled by 1.01 (§5.8)", "[ns][catalog]") {
  // Second table of §5.8 (computed there, 6 decimals).
  const double scaled[8][3] = {
      {8.205160, -22.901935, 16.460725}, {4.066395, -2.861154, 0.518400},
      {3.909595, -2.823352, 0.525037},   {3.285564, -2.415302, 0.485294},
      {2.277873, -1.619822, 0.398481},   {1.872576, -1.230704, 0.358516},
      {1.856437, -1.213239, 0.356800},   {1.875, -1.25, 0.375}};
  const Schedule pe = builtin_schedule("polar-express");
  REQUIRE(pe.polys.size() == 8);
  for (int i = 0; i < 8; ++i) {
    INFO("row " << i + 1);
    CHECK(pe.polys[i].a == Approx(scaled[i][0]).margin(6e-7));
    CHECK(pe.polys[i].b == Approx(scaled[i][1]).margin(6e-7));
    CHECK(pe.polys[i].c == Approx(scaled[i][2]).margin(6e-7));
  }
  // kernel normalization ||X||_F * 1.01 + 1e-7 (§5.7)
  CHECK(pe.normalization.delta == 0.01);
  CHECK(pe.normalization.epsilon == 1e-7);
  // past the end the last row repeats (§5.7)
  CHECK(pe.step(20) == pe.polys[7]);
}

TEST_CASE("ns: other catalog entries match their sources", "[ns][catalog]") {
  const Schedule kj = builtin_schedule("keller");
  CHECK(kj.polys.size() == 1);
  CHECK(kj.step(4).a == 3.4445);
  CHECK(kj.step(4).b == -4.7750);
  CHECK(kj.step(4).c == 2.0315);
  CHECK(kj.resolve_steps(std::nullopt) == 5);
  CHECK(kj.family == Family::Settling);

  const Schedule y6 = builtin_schedule("jiacheng-6");
  REQUIRE(y6.polys.size() == 6);
  CHECK(y6.polys[0].a == 3.8623046875);  // 3955/1024, exact binary fraction (§7.1)
  CHECK(y6.polys[3].c == 2.837890625);
  CHECK(y6.polys[5].b == -1.7900390625);

  const Schedule y5 = builtin_schedule("you-5");
  REQUIRE(y5.polys.size() == 5);
  CHECK(y5.polys[2].b == -5.5913);
  CHECK(y5.polys[4].c == 1.2012);

  const Schedule ds = builtin_schedule("deepseek-v4");
  REQUIRE(ds.polys.size() == 10);
  CHECK(ds.polys[7].a == 3.4445);
  CHECK(ds.polys[8].a == 2.0);
  CHECK(ds.polys[9].c == 0.5);
  CHECK(ds.resolve_steps(std::nullopt) == 10);

  const Schedule cu = builtin_schedule("cubic");
  CHECK(cu.polys[0].degree() == 3);

  for (const auto& n : catalog_names()) CHECK_NOTHROW(builtin_schedule(n).validate());
  CHECK_THROWS_AS(builtin_schedule("kellr"), muspec::UsageError);
}

TEST_CASE("ns: past-end rules", "[ns][schedule]") {
  Schedule s;
  s.polys = {{1.0, 0, 0}, {2.0, 0, 0}, {3.0, 0, 0}};
  s.past_end = PastEnd::RepeatLast;
  CHECK(s.step(5).a == 3.0);
  s.past_end = PastEnd::Cycle;
  CHECK(s.step(3).a == 1.0);
  CHECK(s.step(5).a == 3.0);
  CHECK(s.gain_at_zero(4) == 6.0);
}

TEST_CASE("ns: schedule JSON round trip and errors", "[ns][schedule][io]") {
  muspec_test::TempDir dir("ns-json");
  Schedule s = builtin_schedule("polar-express");
  s.band = Band{0.9, 1.1};
  s.metadata["note"] = "x";
  const std::string path = dir.file("pe.json");
  save_schedule_file(s, path);
  const Schedule t = load_schedule_file(path);
  REQUIRE(t.polys.size() == s.polys.size());
  for (size_t i = 0; i < s.polys.size(); ++i) CHECK(t.polys[i] == s.polys[i]);  // bit-exact
  CHECK(t.normalization.delta == s.normalization.delta);
  CHECK(t.normalization.epsilon == s.normalization.epsilon);
  CHECK(t.band->lo == 0.9);
  CHECK(t.name == "polar-express");
  CHECK(t.metadata["note"] == "x");
  CHECK(resolve_schedule(path).polys.size() == 8);

  // a cubic is written as [a, b]
  Schedule c = builtin_schedule("cubic");
  CHECK(schedule_to_json(c)["steps"][0].size() == 2);

  auto fails_with = [&](const std::string& text, const std::string& needle) {
    muspec_test::write_bytes(dir.file("bad.json"), text);
    try {
      load_schedule_file(dir.file("bad.json"));
      FAIL("no error for " << text);
    } catch (const muspec::InputError& e) {
      INFO(e.what());
      CHECK(std::string(e.what()).find(needle) != std::string::npos);
      CHECK(std::string(e.what()).find("bad.json") != std::string::npos);
    }
  };
  fails_with("{\"format\":\"muspec.ns.schedule\",\"version\":2,\"steps\":[[1,2,3]]}", "version 2");
  fails_with("{\"format\":\"muspec.ns.schedule\",\"version\":1,\"steps\":[]}", "non-empty");
  fails_with("{\"format\":\"muspec.ns.schedule\",\"version\":1,\"steps\":[[1,2,3,4]]}", "[a, b]");
  fails_with("{\"format\":\"muspec.ns.schedule\",\"version\":1,\"steps\":[[-1,2,3]]}", "gain at zero");
  fails_with("{\"format\":\"other\"}", "not a muspec schedule");
  fails_with("{not json", "invalid JSON");

  // the Polar Express repository's save_coefficients() format
  muspec_test::write_bytes(dir.file("pe_repo.json"),
                           "{\"degree\": 5, \"params\": {\"l\": 0.001}, \"coefficients\": [[8.2, -22.9, 16.4], [1.875, -1.25, 0.375]]}");
  const Schedule r = load_schedule_file(dir.file("pe_repo.json"));
  CHECK(r.polys.size() == 2);
  CHECK(r.name == "pe_repo");

  CHECK_THROWS_AS(resolve_schedule(dir.file("missing.json")), muspec::UsageError);
}

TEST_CASE("ns: cost model follows §2.4", "[ns][cost]") {
  const OddPoly quintic{3.4445, -4.775, 2.0315}, cubic{1.5, -0.5, 0.0};
  const double m = 1024, n = 4096;
  // 4m²n + 2m³ plus the lower-order element-wise terms
  CHECK(step_flops(quintic, 1024, 4096) == Approx(4 * m * m * n + 2 * m * m * m).epsilon(1e-3));
  CHECK(step_flops(cubic, 1024, 4096) == Approx(4 * m * m * n).epsilon(1e-3));
  // orientation does not matter: the kernel transposes so that m ≤ n
  CHECK(step_flops(quintic, 4096, 1024) == step_flops(quintic, 1024, 4096));
  CHECK(step_matmuls(quintic) == 3);
  CHECK(step_matmuls(cubic) == 2);
  const Schedule kj = builtin_schedule("keller");
  CHECK(schedule_flops(kj, 5, 1024, 4096) ==
        Approx(5 * step_flops(quintic, 1024, 4096) + 3 * m * n));
}
