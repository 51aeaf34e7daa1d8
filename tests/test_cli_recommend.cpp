// `muspec recommend` and `muspec plan` end to end: planted spectra written with
// write_spectra_h5, the written config read back and checked by hand; and a real scan of
// sample_data/runs/d40.
#include <catch2/catch.hpp>

#include <map>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "raw_hdf5.h"

#include "laws/laws.h"
#include "configs/ns_config.h"
#include "store/spectra_store.h"
#include "test_support.h"

using muspec_test::run_muspec;
using muspec_test::TempDir;
using nlohmann::json;

namespace {

muspec::SpectrumRecord planted(const std::string& param, const std::string& op, int layer, int64_t rows,
                               int64_t cols, double lo) {
  muspec::SpectrumRecord r;
  r.name = "momentum:" + param;
  r.tensor = param;
  r.parameter = param, r.op_type = op, r.layer = layer, r.num_layers = 2, r.rel_depth = layer;
  r.kind = "momentum", r.step = 20, r.run = "planted", r.muon = true, r.transform = "none";
  r.rows = rows, r.cols = cols, r.tensor_shape = {rows, cols};
  r.dtype = "F32", r.method = "svd", r.device = "cpu";
  const int64_t k = std::min(rows, cols);
  double f2 = 0;
  for (int64_t i = 0; i < k; ++i) {
    r.sigma.push_back(lo * std::pow(1.0 / lo, static_cast<double>(i) / (k - 1)));
    f2 += r.sigma.back() * r.sigma.back();
  }
  r.summary = muspec::summarize_spectrum(r.sigma, std::sqrt(f2), 0.0, {0.05, 0.5});
  return r;
}

std::string planted_file(const TempDir& dir) {
  muspec::SpectraFile f;
  f.records = {planted("model.layers.0.self_attn.q_proj.weight", "q", 0, 32, 32, 1e-5),
               planted("model.layers.0.mlp.up_proj.weight", "up", 0, 48, 16, 1e-2),
               planted("model.layers.1.mlp.down_proj.weight", "down", 1, 16, 48, 1e-3)};
  const std::string path = dir.file("planted.h5");
  muspec::write_spectra_h5(path, f);
  return path;
}

double apply(const json& coeffs, double delta, double s) {
  double x = s / (1.0 + delta);
  for (const auto& t : coeffs) {
    const double a = t[0], b = t[1], c = t[2];
    x = a * x + b * x * x * x + c * x * x * x * x * x;
  }
  return x;
}

}  // namespace

TEST_CASE("cli recommend: planted spectra, config read back and checked", "[cli][recommend]") {
  TempDir dir("rec");
  const std::string h5 = planted_file(dir), out = dir.file("ns_config.json");
  for (const std::string family : {"keller", "polar-express", "designed"}) {
    const auto r = run_muspec("recommend --spectra '" + h5 + "' --family " + family + " -o '" + out + "'");
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("total NS flops") != std::string::npos);
    CHECK(r.out.find("model.layers.0.self_attn.q_proj.weight") != std::string::npos);
    const json j = json::parse(muspec_test::read_text(out));
    CHECK(muspec::ns_config_problem(j) == "");
    CHECK(j["provenance"]["mode"] == "measured");
    CHECK(j["provenance"]["family"] == family);
    CHECK(j["command"].get<std::string>().find("--family " + family) != std::string::npos);
    REQUIRE(j["parameters"].size() == 3);
    const double lo = j["provenance"]["band"][0], hi = j["provenance"]["band"][1];
    double flops = 0;
    for (const auto& [name, e] : j["parameters"].items()) {
      INFO(name);
      CHECK(e["bound_kind"] == "measured");
      const double delta = e["normalization"]["delta"];
      for (int i = 0; i <= 2000; ++i) {
        const double s = std::exp(std::log(e["lower_bound"].get<double>()) * (1.0 - i / 2000.0));
        const double y = apply(e["coefficients"], delta, s);
        CHECK((y >= lo && y <= hi));
        if (!(y >= lo && y <= hi)) break;
      }
      flops += e["flops"].get<double>();
    }
    CHECK(j["totals"]["flops"].get<double>() == Approx(flops));
  }
}

TEST_CASE("cli recommend: torch-groups says what it approximated", "[cli][recommend]") {
  TempDir dir("rec");
  const std::string h5 = planted_file(dir), out = dir.file("groups.json");
  auto r = run_muspec("recommend --spectra '" + h5 + "' --family polar-express --format torch-groups -q -o '" + out + "'");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("torch-groups approximation") != std::string::npos);
  json j = json::parse(muspec_test::read_text(out));
  CHECK(j["format"] == "muspec.torch_groups");
  size_t n = 0;
  for (const auto& g : j["groups"]) {
    CHECK(g["exact"] == false);
    CHECK_FALSE(g["approximation"].get<std::string>().empty());
    CHECK(g["ns_steps"].get<int>() < 100);
    n += g["params"].size();
  }
  CHECK(n == 3);
  r = run_muspec("recommend --spectra '" + h5 + "' --format torch-groups -q -o '" + out + "'");
  REQUIRE(r.exit_code == 0);
  j = json::parse(muspec_test::read_text(out));
  for (const auto& g : j["groups"]) CHECK(g["exact"] == true);
}

TEST_CASE("cli recommend/plan: usage errors exit 2 and name the problem", "[cli][recommend]") {
  TempDir dir("rec");
  const std::string h5 = planted_file(dir), out = dir.file("x.json");
  auto r = run_muspec("recommend --spectra '" + h5 + "' --laws l.json --params 1e9 -o '" + out + "'");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("exactly one of --spectra or --laws") != std::string::npos);
  r = run_muspec("recommend --spectra '" + dir.file("missing.h5") + "' -o '" + out + "'");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("missing.h5") != std::string::npos);
  r = run_muspec("recommend --spectra '" + h5 + "' --family nope -o '" + out + "'");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("'nope'") != std::string::npos);
  r = run_muspec("plan --spectra '" + h5 + "' --budget 10 -o '" + out + "'");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("cheapest allocation") != std::string::npos);
  // --budget must be finite and > 0; --cells within [1, 1e7] (checked before any work).
  for (const char* budget : {"nan", "inf", "0", "-1e9"}) {
    INFO(budget);
    r = run_muspec("plan --spectra '" + h5 + "' --budget " + budget + " -o '" + out + "'");
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("--budget must be a finite number of flops above 0") != std::string::npos);
  }
  for (const char* cells : {"0", "-5", "10000001", "2147483647"}) {
    INFO(cells);
    r = run_muspec("plan --spectra '" + h5 + "' --mean-steps 3 --cells " + cells + " -o '" + out + "'");
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("--cells must be between 1 and 10000000") != std::string::npos);
  }
  CHECK_FALSE(std::filesystem::exists(out));
}

TEST_CASE("cli plan: a budget above every allocation is solved exactly and said so", "[cli][plan]") {
  TempDir dir("plan");
  const std::string h5 = planted_file(dir), out = dir.file("plan.json");
  const auto r = run_muspec("plan --spectra '" + h5 + "' --budget 1e300 --max-steps 6 -o '" + out + "'");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("the budget covers the most expensive allocation") != std::string::npos);
  const json j = json::parse(muspec_test::read_text(out));
  CHECK(muspec::ns_config_problem(j) == "");
  CHECK(j["plan"]["budget"].get<double>() == 1e300);
  CHECK(j["plan"]["budget_covers_all"] == true);
  CHECK(j["plan"]["optimality_gap"].get<double>() == 0.0);
}

TEST_CASE("cli recommend/plan: a lower bound above 1 skips the parameter (exit 1), never capped", "[cli][recommend]") {
  TempDir dir("rec");
  const std::string h5 = planted_file(dir), out = dir.file("x.json");
  // σ_max/‖G‖_F of the planted spectra is above 0.5: at q = 1 with margin 0.5, ℓ > 1.
  auto r = run_muspec("recommend --spectra '" + h5 + "' --quantile 1 --margin 0.5 -o '" + out + "'");
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("model.layers.0.self_attn.q_proj.weight (record 'momentum:model.layers.0.self_attn.q_proj.weight')") !=
        std::string::npos);
  CHECK(r.err.find("is above 1") != std::string::npos);
  if (std::filesystem::exists(out)) {
    const json j = json::parse(muspec_test::read_text(out));
    for (const auto& [name, e] : j["parameters"].items()) {
      INFO(name);
      CHECK(e["lower_bound"].is_number());
      CHECK(e["output_range"][0].is_number());
      CHECK(e["output_range"][1].is_number());
    }
  }
}

#ifdef MUSPEC_TEST_HDF5
namespace {

// Byte-patches one stored quantile value of a written file, as a damaged or edited file would.
void patch_rel_frob(const std::string& path, const char* dataset, double value) {
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  REQUIRE(f >= 0);
  const hid_t d = H5Dopen2(f, dataset, H5P_DEFAULT);
  REQUIRE(d >= 0);
  hid_t a = H5Aopen(d, "quantile_rel_frob", H5P_DEFAULT);
  REQUIRE(a >= 0);
  double v[2];
  REQUIRE(H5Aread(a, H5T_NATIVE_DOUBLE, v) >= 0);
  REQUIRE(H5Aclose(a) >= 0);
  v[0] = value;  // level 0.05
  REQUIRE(H5Adelete(d, "quantile_rel_frob") >= 0);
  const hsize_t n = 2;
  const hid_t space = H5Screate_simple(1, &n, nullptr);
  a = H5Acreate2(d, "quantile_rel_frob", H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT);
  REQUIRE(a >= 0);
  REQUIRE(H5Awrite(a, H5T_NATIVE_DOUBLE, v) >= 0);
  REQUIRE(H5Aclose(a) >= 0);
  REQUIRE(H5Sclose(space) >= 0);
  REQUIRE(H5Dclose(d) >= 0);
  // The same value in the /summary table (q0.05_rel_frob, the record's row), which the reader
  // uses when the store marks it complete: an edit of both must be refused too.
  const hid_t c = H5Dopen2(f, "/summary/q0.05_rel_frob", H5P_DEFAULT);
  REQUIRE(c >= 0);
  const hid_t cs = H5Dget_space(c);
  std::vector<double> column(static_cast<size_t>(H5Sget_simple_extent_npoints(cs)));
  REQUIRE(H5Dread(c, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, column.data()) >= 0);
  column.at(static_cast<size_t>(std::atoi(dataset + std::strlen("/spectra/")))) = value;
  REQUIRE(H5Dwrite(c, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, column.data()) >= 0);
  REQUIRE(H5Sclose(cs) >= 0);
  REQUIRE(H5Dclose(c) >= 0);
  REQUIRE(H5Fclose(f) >= 0);
}

}  // namespace

TEST_CASE("cli recommend/plan: a patched quantile in spectra.h5 is refused, naming the dataset", "[cli][recommend]") {
  for (const double value : {std::nan(""), 5.0, 0.9}) {
    INFO(value);
    TempDir dir("rec");
    const std::string h5 = planted_file(dir), out = dir.file("x.json");
    patch_rel_frob(h5, "/spectra/000001", value);
    for (const std::string& cmd : {"recommend --spectra '" + h5 + "' --family designed",
                                  "recommend --spectra '" + h5 + "'", "plan --spectra '" + h5 + "' --mean-steps 3"}) {
      const auto r = run_muspec(cmd + " -o '" + out + "'");
      INFO(cmd << "\n" << r.out << r.err);
      CHECK(r.exit_code == 2);
      CHECK(r.err.find(h5) != std::string::npos);
      CHECK(r.err.find("/spectra/000001") != std::string::npos);
      CHECK(r.err.find("quantile_rel_frob[0] (level 0.05)") != std::string::npos);
      CHECK_FALSE(std::filesystem::exists(out));
    }
  }
}
#endif

TEST_CASE("cli plan: planted spectra under a mean-steps budget", "[cli][plan]") {
  TempDir dir("plan");
  const std::string h5 = planted_file(dir), out = dir.file("plan.json");
  const auto r = run_muspec("plan --spectra '" + h5 + "' --mean-steps 3 --max-steps 8 -o '" + out + "'");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("worst quality") != std::string::npos);
  const json j = json::parse(muspec_test::read_text(out));
  CHECK(muspec::ns_config_problem(j) == "");
  CHECK(j["provenance"]["mode"] == "plan");
  CHECK(j["totals"]["flops"].get<double>() <= j["plan"]["budget"].get<double>() * (1 + 1e-12));
  CHECK(j["plan"]["groups"].size() == 3);
}

TEST_CASE("cli plan --format torch-groups carries the plan's own settings", "[cli][plan]") {
  TempDir dir("plan");
  const std::string h5 = planted_file(dir), cfg = dir.file("plan.json"), groups = dir.file("groups.json");
  const std::string plan = "plan --spectra '" + h5 + "' --mean-steps 3 --max-steps 8 -q -o ";
  REQUIRE(run_muspec(plan + "'" + cfg + "'").exit_code == 0);
  auto r = run_muspec(plan + "'" + groups + "' --format torch-groups");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const json c = json::parse(muspec_test::read_text(cfg)), g = json::parse(muspec_test::read_text(groups));
  CHECK(g["format"] == "muspec.torch_groups");
  // Keller's schedule repeats one triple: every parameter keeps exactly the plan's step count.
  size_t n = 0;
  for (const auto& grp : g["groups"]) {
    CHECK(grp["exact"] == true);
    for (const auto& p : grp["params"]) {
      const std::string name = p.get<std::string>();
      REQUIRE(c["parameters"].contains(name));
      CHECK(grp["ns_steps"] == c["parameters"][name]["steps"]);
      ++n;
    }
  }
  CHECK(n == c["parameters"].size());
  // A per-step family is approximated, and plan warns that the budget may not hold.
  r = run_muspec(plan + "'" + groups + "' --format torch-groups --family polar-express");
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("may exceed the budget") != std::string::npos);
  CHECK(run_muspec(plan + "'" + groups + "' --format onnx").exit_code == 2);
}

TEST_CASE("cli recommend: real training run d40 saves NS FLOPs", "[cli][recommend][e2e]") {
  const std::string run = muspec_test::source_dir() + "/sample_data/runs/d40";
  if (!std::filesystem::exists(run)) return;
  TempDir dir("real");
  const std::string h5 = dir.file("s.h5"), out = dir.file("cfg.json");
  REQUIRE(run_muspec("scan '" + run + "' -o '" + h5 + "' --max-rows 1").exit_code == 0);
  const auto r = run_muspec("recommend --spectra '" + h5 + "' -o '" + out + "'");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("kind momentum (28)") != std::string::npos);
  const json j = json::parse(muspec_test::read_text(out));
  CHECK(muspec::ns_config_problem(j) == "");
  CHECK(j["parameters"].size() == 28);
  CHECK(j["totals"]["ratio"].get<double>() < 1.0);
  const auto p = run_muspec("plan --spectra '" + h5 + "' --step 50 --mean-steps 3 -q -o '" + out + "'");
  CHECK(p.exit_code == 0);
}

TEST_CASE("cli recommend --laws: patterns, shapes from a model config, torch-groups names", "[cli][recommend][laws]") {
  const std::string config = muspec_test::source_dir() + "/sample_data/runs/d40/checkpoint-300/config.json";
  if (!std::filesystem::exists(config)) return;
  TempDir dir("laws");
  muspec::analysis::LawSet laws;
  laws.quantiles = {0.05};
  muspec::analysis::FittedLaw l;
  l.group.name = "mlp";
  l.group.op_type = "";  // any op type
  l.quantile_level = 0.05;
  l.log_a = std::log(0.2), l.beta = -0.1, l.se_log_a = 0.05, l.se_beta = 0.005, l.residual_scale = 0.05, l.dof = 4;
  l.params_min = 1e4, l.params_max = 1e6, l.num_sizes = l.num_runs = 6;
  laws.laws = {l};
  const std::string path = dir.file("laws.json"), out = dir.file("cfg.json");
  muspec::analysis::write_laws_json(path, laws);
  auto r = run_muspec("recommend --laws '" + path + "' --params 1e8 --model-config '" + config + "' -o '" + out + "'");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  json j = json::parse(muspec_test::read_text(out));
  CHECK(muspec::ns_config_problem(j) == "");
  CHECK(j["provenance"]["mode"] == "predicted");
  CHECK(j["provenance"]["target_params"] == 1e8);
  REQUIRE(j["patterns"].size() == 7);  // q k v o gate up down, all 4 blocks in one pattern each
  for (const auto& p : j["patterns"]) {
    CHECK(p["layers"] == json({0, 3}));
    CHECK(p["bound_kind"] == "predicted_lower");
    CHECK(p["flops"].get<double>() > 0);
  }
  CHECK(j["patterns"][4]["shape"] == json({112, 40}));  // gate: intermediate x hidden
  CHECK(j["totals"]["default_flops"].get<double>() > 0);
  r = run_muspec("recommend --laws '" + path + "' --params 1e8 --layers 2 --family designed --format torch-groups -o '" +
                 out + "'");
  REQUIRE(r.exit_code == 0);
  j = json::parse(muspec_test::read_text(out));
  size_t names = 0;
  for (const auto& g : j["groups"]) {
    CHECK(g["exact"] == false);
    for (const auto& n : g["params"]) names += n.get<std::string>().rfind("model.layers.", 0) == 0;
  }
  CHECK(names == 14);
}

TEST_CASE("cli recommend: across training, the lower bound is the minimum over the settled checkpoints", "[cli][recommend][e2e]") {
  const std::string run = muspec_test::source_dir() + "/sample_data/runs/d40";
  TempDir dir("across");
  const std::string h5 = dir.file("s.h5");
  REQUIRE(run_muspec("scan '" + run + "' -o '" + h5 + "' -q").exit_code == 0);
  const auto r = run_muspec("recommend --spectra '" + h5 + "' --burn-in 100 --precision f64 -q -o '" + dir.file("all.json") + "'");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const json all = json::parse(muspec_test::read_text(dir.file("all.json")))["parameters"];
  // The oracle: one recommendation per checkpoint (--step S), each on that checkpoint alone.
  std::map<int64_t, json> single;
  for (const int64_t step : {100, 200, 300}) {
    const std::string out = dir.file("s" + std::to_string(step) + ".json");
    REQUIRE(run_muspec("recommend --spectra '" + h5 + "' --step " + std::to_string(step) + " --precision f64 -q -o '" + out + "'").exit_code ==
            0);
    single[step] = json::parse(muspec_test::read_text(out))["parameters"];
  }
  int fragile = 0;
  for (const auto& [name, p] : all.items()) {
    INFO(name);
    const json& st = p["stability"];
    CHECK(st["lower_bound_from"] == "settled");
    REQUIRE(st["checkpoints"].size() == 3);  // --burn-in 100: steps 100, 200, 300
    double lowest = 1.0;
    int most = 0;
    for (const auto& cp : st["checkpoints"]) {
      const json& one = single.at(cp["step"].get<int64_t>())[name];
      CHECK(cp["lower_bound"].get<double>() == Approx(one["lower_bound"].get<double>()).epsilon(1e-12));
      CHECK(cp["steps_needed"] == one["steps"]);
      lowest = std::min(lowest, one["lower_bound"].get<double>());
      most = std::max(most, one["steps"].get<int>());
    }
    CHECK(p["lower_bound"].get<double>() == Approx(lowest).epsilon(1e-12));
    CHECK(p["steps"] == most);  // the minimum bound needs the most steps of any settled checkpoint
    // threshold: the chosen steps cover it and not 0.1% below it (ns threshold, an independent route).
    const double t = st["threshold"].get<double>();
    CHECK(st["threshold_ratio"].get<double>() == Approx(p["lower_bound"].get<double>() / t));
    const auto th = run_muspec("ns threshold --schedule keller --steps " + std::to_string(p["steps"].get<int>()));
    const size_t at = th.out.find("coverage:");
    REQUIRE(at != std::string::npos);
    CHECK(std::stod(th.out.substr(at + 9)) == Approx(t).epsilon(1e-5));  // printed with 6 digits
    fragile += st["fragile"].get<bool>();
    CHECK(st["fragile"] == (st["threshold_ratio"].get<double>() < 1.1));
  }
  CHECK(all.size() == 28);
  INFO("fragile: " << fragile);
}

TEST_CASE("cli plan --precision: bf16 widens the promised band and promises nothing under the floor", "[cli][plan][e2e]") {
  const std::string run = muspec_test::source_dir() + "/sample_data/runs/d40";
  TempDir dir("planprec");
  const std::string h5 = dir.file("s.h5");
  REQUIRE(run_muspec("scan '" + run + "/checkpoint-50' -o '" + h5 + "' -q").exit_code == 0);
  json cfg[2];
  int i = 0;
  for (const std::string prec : {"f64", "bf16"}) {
    const std::string out = dir.file(prec + ".json");
    REQUIRE(run_muspec("plan --spectra '" + h5 + "' --mean-steps 5 --precision " + prec + " -q -o '" + out + "'").exit_code == 0);
    cfg[i++] = json::parse(muspec_test::read_text(out));
  }
  CHECK(cfg[0]["provenance"]["precision_band"] == cfg[0]["provenance"]["band"]);
  CHECK(cfg[1]["provenance"]["precision_band"][0].get<double>() < cfg[1]["provenance"]["band"][0].get<double>());
  int under = 0;
  for (const auto& [name, p] : cfg[1]["parameters"].items()) {
    const json& exact = cfg[0]["parameters"][name];
    CHECK(p["steps"] == exact["steps"]);  // the same allocation; only the promise differs
    if (p["lower_bound"].get<double>() < 3e-3) {
      ++under;
      CHECK(p["requirement_met"] == false);
    } else {
      CHECK(p["requirement_met"] == exact["requirement_met"]);
    }
  }
  CHECK(under > 0);
}
