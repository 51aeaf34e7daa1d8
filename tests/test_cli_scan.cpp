// End-to-end tests of `muspec scan` and `muspec synth` through the real binary.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <limits>

#include <nlohmann/json.hpp>

#include "core/dtype.h"
#include "io/safetensors.h"
#include "store/spectra_store.h"
#include "test_support.h"

using namespace muspec;
using muspec_test::run_muspec;
using muspec_test::TempDir;
namespace fs = std::filesystem;

namespace {

double hexf(const nlohmann::json& j) { return std::strtod(j.get<std::string>().c_str(), nullptr); }

std::string f32_bytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4);
}

/// Absolute accuracy to expect from a method on a matrix with largest singular value s_max:
/// the svd floor times its relative target (see spectra/backend.h).
double svd_abs_error(double s_max, int64_t m, int64_t n) {
  return std::sqrt(static_cast<double>(std::max(m, n))) * std::numeric_limits<double>::epsilon() * s_max * 10;
}

}  // namespace

TEST_CASE("synth then scan recovers the planted spectra in all three outputs", "[e2e][scan]") {
  TempDir dir("e2e-synth");
  const std::string d = dir.path().string();
  auto r = run_muspec("synth " + d + "/in --spectrum power:0.7 --shape 96x160 --count 3 --dtype f32 --seed 9");
  REQUIRE(r.exit_code == 0);
  r = run_muspec("scan " + d + "/in -o " + d + "/s.h5 --summary " + d + "/s.csv --json " + d + "/s.json --method svd");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("synth.000"));

  const auto truth = nlohmann::json::parse(muspec_test::read_text(d + "/in/synth.spectra.json"));
  const SpectraFile h5 = read_spectra_h5(d + "/s.h5");
  REQUIRE(h5.records.size() == 3);
  for (const auto& rec : h5.records) {
    INFO(rec.name);
    const auto& t = truth["matrices"][rec.name];
    const auto sigma = t["sigma"].get<std::vector<double>>();
    const double bound = t["perturbation_bound"].get<double>() + svd_abs_error(1.0, 96, 160);
    REQUIRE(rec.sigma.size() == sigma.size());
    for (size_t i = 0; i < sigma.size(); ++i) REQUIRE(std::fabs(rec.sigma[i] - sigma[i]) <= bound);
    CHECK(rec.method == "svd");
    CHECK(rec.rows == 96);
    CHECK(rec.dtype == "F32");
  }
  const auto js = nlohmann::json::parse(muspec_test::read_text(d + "/s.json"));
  REQUIRE(js["matrices"].size() == 3);
  const auto& m0 = js["matrices"][0];
  const auto sigma0 = truth["matrices"][m0["name"].get<std::string>()]["sigma"].get<std::vector<double>>();
  CHECK(m0["sigma_max"].get<double>() == Approx(sigma0.back()).epsilon(1e-5));
  // numpy 'linear' quantile at 0.5 of 96 values: midway between order statistics 47 and 48.
  CHECK(m0["quantiles"]["0.5"]["sigma"].get<double>() == Approx(0.5 * (sigma0[47] + sigma0[48])).epsilon(1e-5));
  const std::string csv = muspec_test::read_text(d + "/s.csv");
  CHECK_THAT(csv, Catch::StartsWith("name,file,tensor,slice,shape"));
  CHECK_THAT(csv, Catch::Contains("q0.05_rel_frob"));
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 4);
}

TEST_CASE("scan of numpy-written files agrees with numpy's singular values", "[e2e][scan][numpy]") {
  TempDir dir("e2e-numpy");
  const std::string fx = muspec_test::fixture("e2e");
  auto r = run_muspec("scan " + fx + " --json " + dir.file("s.json") + " --min-dim 2");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);  // the 1-D norm and the int64 counter are ignored, not skipped
  CHECK_THAT(r.err, Catch::Contains("ignored 2 tensors"));
  const auto want = nlohmann::json::parse(muspec_test::read_text(fx + "/numpy_svd.json"))["singular_values"];
  const auto got = nlohmann::json::parse(muspec_test::read_text(dir.file("s.json")))["matrices"];
  REQUIRE(got.size() == want.size());
  for (const auto& m : got) {
    const std::string name = m["name"];
    INFO(name);
    REQUIRE(want.contains(name));
    std::vector<double> sigma;
    for (const auto& v : want[name]) sigma.push_back(hexf(v));
    CHECK(m["sigma_max"].get<double>() == Approx(sigma.back()).epsilon(1e-12));
    CHECK(m["sigma_min"].get<double>() == Approx(sigma.front()).epsilon(1e-9));
    CHECK(m["quantiles"]["0.25"]["sigma"].get<double>() ==
          Approx(sigma[static_cast<size_t>(std::floor((sigma.size() - 1) * 0.25))] +
                 ((sigma.size() - 1) * 0.25 - std::floor((sigma.size() - 1) * 0.25)) *
                     (sigma[static_cast<size_t>(std::floor((sigma.size() - 1) * 0.25)) + 1] -
                      sigma[static_cast<size_t>(std::floor((sigma.size() - 1) * 0.25))]))
              .epsilon(1e-9));
  }
}

TEST_CASE("NaN matrices and bad files are reported by name and the scan goes on", "[e2e][scan][bad-input]") {
  TempDir dir("e2e-bad");
  std::vector<float> good(8 * 6), nan_m(8 * 6, 1.0f);
  for (size_t i = 0; i < good.size(); ++i) good[i] = std::sin(static_cast<float>(i) * 1.3f);
  nan_m[7] = std::numeric_limits<float>::quiet_NaN();
  write_safetensors(dir.file("a.safetensors"),
                    {{"good.weight", DType::F32, {8, 6}, f32_bytes(good)},
                     {"broken.weight", DType::F32, {8, 6}, f32_bytes(nan_m)}},
                    {});
  muspec_test::write_bytes(dir.file("b.safetensors"), std::string("\x40\x00\x00\x00\x00\x00\x00\x00{\"x\":", 13));
  auto r = run_muspec("scan " + dir.path().string() + " --summary " + dir.file("s.csv") + " -q");
  INFO(r.err);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("a.safetensors") && Catch::Contains("broken.weight") && Catch::Contains("non-finite"));
  CHECK_THAT(r.err, Catch::Contains("b.safetensors"));
  CHECK(r.out.empty());  // --quiet
  const std::string csv = muspec_test::read_text(dir.file("s.csv"));
  CHECK_THAT(csv, Catch::Contains("good.weight"));
  CHECK_THAT(csv, Catch::Contains("broken.weight"));  // reported with its NaN count, not analysed
}

TEST_CASE("a fatal scan writes nothing and leaves existing outputs untouched", "[e2e][scan][bad-input]") {
  TempDir dir("e2e-fatal");
  muspec_test::write_bytes(dir.file("old.csv"), "old contents\n");
  muspec_test::write_bytes(dir.file("bad.safetensors"), "not a checkpoint at all");
  auto r = run_muspec("scan " + dir.file("bad.safetensors") + " -o " + dir.file("s.h5") + " --summary " + dir.file("old.csv"));
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("bad.safetensors"));
  CHECK_FALSE(fs::exists(dir.file("s.h5")));
  CHECK(muspec_test::read_text(dir.file("old.csv")) == "old contents\n");
  for (const auto& e : fs::directory_iterator(dir.path()))  // no temporary left behind
    CHECK(e.path().filename().string().find(".tmp") == std::string::npos);
}

TEST_CASE("command-line errors", "[e2e][cli]") {
  auto r = run_muspec("scna x");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("did you mean 'scan'"));
  r = run_muspec("--version");
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::StartsWith("muspec "));
  r = run_muspec("help");
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("scan") && Catch::Contains("synth"));
  r = run_muspec("scan");
  CHECK(r.exit_code == 2);
  r = run_muspec("scan " + muspec_test::fixture("e2e") + " --method eigh");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("unknown method 'eigh'"));
  r = run_muspec("scan " + muspec_test::fixture("e2e") + " --quantiles 0.5,1.5");
  CHECK(r.exit_code == 2);
  r = run_muspec("scan /nonexistent/path");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("/nonexistent/path"));
  r = run_muspec("synth /tmp/x --spectrum power:1 --shape 10y10");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("--shape"));
}

TEST_CASE("scan: a CUDA request without a usable GPU is a clear error, auto falls back with a note", "[e2e][cli]") {
  auto r = run_muspec("scan " + muspec_test::fixture("e2e") + " --device cuda -q");
  if (r.exit_code == 0) {
    WARN("a CUDA device is present; skipping the no-GPU check");
    return;
  }
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("--device cuda"));
  r = run_muspec("scan " + muspec_test::fixture("e2e") + " --device auto");
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.err, Catch::Contains("using the CPU backend"));
}

TEST_CASE("the sign transform analyses sign(X)", "[e2e][scan]") {
  TempDir dir("e2e-sign");
  // sign of this matrix is [[1, -1], [1, 1]] whose singular values are sqrt(2), sqrt(2).
  write_safetensors(dir.file("m.safetensors"), {{"w", DType::F32, {2, 2}, f32_bytes({0.3f, -7.0f, 2.0f, 0.01f})}}, {});
  auto r = run_muspec("scan " + dir.file("m.safetensors") + " --transform sign --json " + dir.file("s.json") + " -q");
  REQUIRE(r.exit_code == 0);
  const auto m = nlohmann::json::parse(muspec_test::read_text(dir.file("s.json")))["matrices"][0];
  CHECK(m["transform"] == "sign");
  CHECK(m["sigma_max"].get<double>() == Approx(std::sqrt(2.0)).epsilon(1e-12));
  CHECK(m["sigma_min"].get<double>() == Approx(std::sqrt(2.0)).epsilon(1e-12));
}

TEST_CASE("scan: the fuzzers' reproducers are refused cleanly (regression)", "[e2e][scan][bad-input]") {
  // tests/fuzz/crashes holds inputs that once made the readers overflow signed integers
  // (a zero-size tensor with huge other dimensions; a legacy view offset of 2^63 - 1). Under the
  // sanitizer build any undefined behaviour aborts the binary, which fails the exit-code check.
  auto r = run_muspec("scan " + muspec_test::source_dir() + "/tests/fuzz/crashes -q");
  INFO(r.err);
  CHECK(r.exit_code == 2);  // nothing analysable, reported; not a crash (>= 128)
  CHECK_THAT(r.err, Catch::Contains("legacy-view-offset-overflow.pt"));
}

TEST_CASE("scan: a matrix too large for host memory is skipped by name and the scan goes on", "[e2e][scan][bad-input]") {
#if defined(__SANITIZE_ADDRESS__)
  WARN("address sanitizer reserves the address space that ulimit -v limits: skipped in this build");
  return;
#else
  // A 16384 x 16384 bf16 matrix (a sparse 512 MiB file) needs a 2 GiB float64 copy; the scan
  // runs under a 1.5 GiB address-space limit, so that allocation fails. Before, std::bad_alloc
  // ended the whole scan; now that matrix is reported and the small one is still analysed.
  TempDir dir("e2e-oom");
  const int64_t n = 16384, big_bytes = n * n * 2;
  std::vector<float> small(8 * 6);
  for (size_t i = 0; i < small.size(); ++i) small[i] = std::cos(static_cast<float>(i) * 0.7f);
  std::string header = "{\"big.weight\":{\"dtype\":\"BF16\",\"shape\":[16384,16384],\"data_offsets\":[0," +
                       std::to_string(big_bytes) + "]},\"small.weight\":{\"dtype\":\"F32\",\"shape\":[8,6]," +
                       "\"data_offsets\":[" + std::to_string(big_bytes) + "," + std::to_string(big_bytes + 192) + "]}}";
  header.resize((header.size() + 7) / 8 * 8, ' ');
  {
    std::ofstream f(dir.file("big.safetensors"), std::ios::binary);
    const uint64_t len = header.size();
    f.write(reinterpret_cast<const char*>(&len), 8);
    f << header;
    f.seekp(static_cast<std::streamoff>(8 + header.size() + static_cast<size_t>(big_bytes)));  // a hole
    f.write(reinterpret_cast<const char*>(small.data()), 192);
  }
  const auto r = muspec_test::run_command("ulimit -v 1500000; OPENBLAS_NUM_THREADS=1 '" + std::string(MUSPEC_BINARY) +
                                          "' scan '" + dir.file("big.safetensors") + "' --threads 1 --device cpu -q --json '" +
                                          dir.file("s.json") + "'");
  INFO(r.err);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("big.safetensors") && Catch::Contains("big.weight") &&
                        Catch::Contains("not enough host memory"));
  const std::string json = muspec_test::read_text(dir.file("s.json"));
  CHECK_THAT(json, Catch::Contains("small.weight"));
#endif
}
