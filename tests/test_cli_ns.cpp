// End-to-end tests of `muspec ns ...` through the built binary: exit codes, messages, written
// files, and numbers checked against the reference tables or exactly known spectra.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "test_support.h"

using muspec_test::run_muspec;
using muspec_test::TempDir;
using nlohmann::json;

namespace {

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

// Minimal .npy (version 1.0, little-endian float64, 1-D).
void write_npy_f64(const std::string& path, const std::vector<double>& v) {
  std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': (" + std::to_string(v.size()) + ",), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
  const uint16_t len = static_cast<uint16_t>(header.size());
  bytes += static_cast<char>(len & 0xff);
  bytes += static_cast<char>(len >> 8);
  bytes += header;
  std::string data(v.size() * 8, '\0');
  std::memcpy(data.data(), v.data(), data.size());
  muspec_test::write_bytes(path, bytes + data);
}

}  // namespace

TEST_CASE("cli ns: show prints built-in schedules and rejects unknown names", "[cli][ns]") {
  auto r = run_muspec("ns show keller");
  CHECK(r.exit_code == 0);
  CHECK(contains(r.out, "3.4445"));
  CHECK(contains(r.out, "484.88"));  // 3.4445^5, the gain at zero of §9.4
  r = run_muspec("ns show polar-express --json");
  REQUIRE(r.exit_code == 0);
  const json j = json::parse(r.out);
  CHECK(j["format"] == "muspec.ns.schedule");
  CHECK(j["steps"].size() == 8);
  CHECK(j["steps"][7][0].get<double>() == 1.875);
  CHECK(j["steps"][0][0].get<double>() == Approx(8.205160).margin(6e-7));  // §5.8 scaled row 1
  r = run_muspec("ns show kellr");
  CHECK(r.exit_code == 2);
  CHECK(contains(r.err, "neither a built-in schedule"));
  CHECK(run_muspec("ns").exit_code == 2);
  CHECK(contains(run_muspec("help ns").out, "simulate"));
  // `help ns eval` shows the options of ns eval, not the ns overview.
  CHECK(contains(run_muspec("help ns eval").out, "--spectra"));
  CHECK(!contains(run_muspec("help ns eval").out, "Subcommands"));
}

TEST_CASE("cli ns: threshold matches §10 and validates its inputs", "[cli][ns]") {
  auto r = run_muspec("ns threshold -s keller -k 5 --band 0.7,10 --lower 1e-3 --json");
  REQUIRE(r.exit_code == 0);
  const json j = json::parse(r.out);
  CHECK(j["threshold"].get<double>() == Approx(1.55e-3).epsilon(0.01));  // §10 KJ×5, target 0.7
  // KJ outputs dip to 0.6818 (§9.1), so no number of steps keeps [1e-3, 1] inside [0.7, 10] ...
  CHECK(j["min_steps"].is_null());
  // ... but inside the settling band [0.68, 1.21] six steps do (5 steps reach only s ≥ 1.5e-3)
  r = run_muspec("ns threshold -s keller --lower 1e-3 --json");
  REQUIRE(r.exit_code == 0);
  CHECK(json::parse(r.out)["min_steps"] == 6);
  r = run_muspec("ns threshold -s keller -k 10 --band 0.7,10");
  CHECK(r.exit_code == 0);
  CHECK(contains(r.out, "threshold: 3.2"));  // §10: KJ×10 → 3.2e-6
  r = run_muspec("ns threshold -s keller --lower 0");
  CHECK(r.exit_code == 2);
  CHECK(contains(r.err, "outside (0, 1]"));
  r = run_muspec("ns threshold -s keller --band 1.2,0.7");
  CHECK(r.exit_code == 2);
  CHECK(contains(r.err, "LO,HI"));
}

TEST_CASE("cli ns: design writes a schedule file that reproduces the published table", "[cli][ns]") {
  TempDir dir("cli-ns-design");
  const std::string out = dir.file("pe.json");
  auto r = run_muspec("ns design -l 1e-3 -k 8 --safety 1 --cushion 0.02407327424182761 --json -o '" + out + "'");
  REQUIRE(r.exit_code == 0);
  const json printed = json::parse(r.out);
  const json file = json::parse(muspec_test::read_text(out));
  CHECK(printed == file);
  CHECK(file["metadata"]["design"]["status"] == "converged");
  // unscaled table of §5.8, rows 1 and 6
  CHECK(std::abs(file["steps"][0][0].get<double>() - 8.28721201814563) < 1e-12);
  CHECK(std::abs(file["steps"][5][1].get<double>() - -1.2679958271945868) < 1e-12);

  // the file is a schedule for eval/threshold
  r = run_muspec("ns threshold -s '" + out + "' --json");
  REQUIRE(r.exit_code == 0);
  CHECK(json::parse(r.out)["steps"] == 8);

  // non-convergence is reported, not hidden
  r = run_muspec("ns design -l 1e-9 -k 2");
  CHECK(r.exit_code == 0);
  CHECK(contains(r.out, "status: steps_insufficient"));
  CHECK(contains(r.err, "warning"));
  r = run_muspec("ns design -l 1.5 -k 3");
  CHECK(r.exit_code == 2);
  CHECK(contains(r.err, "(0, 1]"));
  r = run_muspec("ns design -l 1e-3 -k 3 --degree 4");
  CHECK(r.exit_code == 2);
}

TEST_CASE("cli ns: eval on a sigma text file and a .npy file", "[cli][ns]") {
  TempDir dir("cli-ns-eval");
  muspec_test::write_bytes(dir.file("s.txt"), "# singular values\n3 4\n0.001\n");
  const std::string out = dir.file("q.json");
  auto r = run_muspec("ns eval -s keller --sigma '" + dir.file("s.txt") + "' -o '" + out + "'");
  REQUIRE(r.exit_code == 0);
  const json q = json::parse(muspec_test::read_text(out));
  REQUIRE(q["matrices"].size() == 1);
  const json& m = q["matrices"][0];
  CHECK(m["count"] == 3);
  CHECK(m["in_band"] == 2);  // 1e-3/5 = 2e-4 is far below the KJ×5 threshold (~1.5e-3)
  CHECK(m["s_max"].get<double>() == Approx(4.0 / std::sqrt(25.000001)));
  CHECK(m["energy_fraction"].get<double>() == Approx(25.0 / 25.000001));
  CHECK(m["below_threshold"] == 1);

  write_npy_f64(dir.file("s.npy"), {3.0, 4.0, 0.001});
  r = run_muspec("ns eval -s keller --sigma '" + dir.file("s.npy") + "' -o '" + dir.file("q.csv") + "'");
  REQUIRE(r.exit_code == 0);
  CHECK(contains(muspec_test::read_text(dir.file("q.csv")), "name,shape,count"));

  muspec_test::write_bytes(dir.file("bad.txt"), "1 2 x\n");
  r = run_muspec("ns eval -s keller --sigma '" + dir.file("bad.txt") + "'");
  CHECK(r.exit_code == 2);
  CHECK(contains(r.err, "'x' is not a number"));
  muspec_test::write_bytes(dir.file("neg.txt"), "1 -2\n");
  r = run_muspec("ns eval -s keller --sigma '" + dir.file("neg.txt") + "'");
  CHECK(r.exit_code == 2);
  CHECK(contains(r.err, "negative"));
  CHECK(run_muspec("ns eval -s keller").exit_code == 2);
}

TEST_CASE("cli ns: eval on a scan and simulate on synthetic matrices", "[cli][ns]") {
  TempDir dir("cli-ns-sim");
  auto r = run_muspec("synth '" + dir.path().string() + "' --spectrum logspace:0.01,1 --shape 48x80 --dtype f64 --count 2");
  REQUIRE(r.exit_code == 0);
  const std::string st = dir.file("synth.safetensors");
  // exact spectra written by the generator: the independent oracle for s_max = σ_max/‖σ‖
  const json exact = json::parse(muspec_test::read_text(dir.file("synth.spectra.json")));
  double ss = 0, smax = 0;
  for (double s : exact["matrices"]["synth.000"]["sigma"]) ss += s * s, smax = std::max(smax, s);

  r = run_muspec("scan '" + st + "' -q -o '" + dir.file("spectra.h5") + "'");
  REQUIRE(r.exit_code == 0);
  r = run_muspec("ns eval -s polar-express --spectra '" + dir.file("spectra.h5") + "' -o '" + dir.file("e.json") + "'");
  REQUIRE(r.exit_code == 0);
  const json e = json::parse(muspec_test::read_text(dir.file("e.json")));
  REQUIRE(e["matrices"].size() == 2);
  CHECK(e["matrices"][0]["s_max"].get<double>() == Approx(smax / std::sqrt(ss)).epsilon(1e-9));

  r = run_muspec("ns simulate -s keller --precision f64 '" + st + "' -o '" + dir.file("sim.json") + "'");
  REQUIRE(r.exit_code == 0);
  const json sim = json::parse(muspec_test::read_text(dir.file("sim.json")));
  REQUIRE(sim["matrices"].size() == 2);
  for (const auto& m : sim["matrices"]) CHECK(m["max_abs_error"].get<double>() < 1e-10);

  r = run_muspec("ns simulate -s keller --precision f32 '" + st + "' -o '" + dir.file("sim32.json") + "'");
  REQUIRE(r.exit_code == 0);
  const json sim32 = json::parse(muspec_test::read_text(dir.file("sim32.json")));  // named: a range-for over a
  for (const auto& m : sim32["matrices"]) CHECK(m["max_rel_error"].get<double>() < 1e-4);  // temporary's member dangles

  r = run_muspec("ns simulate -s keller --precision bf16 --max-elements 100 '" + st + "'");
  CHECK(r.exit_code == 2);  // every matrix skipped: nothing simulated
  CHECK(contains(r.err, "larger than --max-elements"));
  r = run_muspec("ns simulate -s keller --precision fp8 '" + st + "'");
  CHECK(r.exit_code == 2);
  CHECK(contains(r.err, "unknown precision"));
}
