// The documented spectra.h5 layout (docs/spectra-h5.md) as independent readers see it: h5py
// reads every dataset, attribute and /summary column of a file muspec wrote, and h5dump lists
// the layout. Skipped with a warning where neither is installed.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "store/spectra_store.h"
#include "store_samples.h"
#include "test_support.h"

using muspec::SpectraFile;
using muspec::SpectrumRecord;
using muspec_test::TempDir;
using namespace muspec_test::store_samples;

namespace {

std::string python_with_h5py() {
  for (const std::string& py : {muspec_test::python_with_numpy(), std::string("/usr/bin/python3")}) {
    if (py.empty()) continue;
    if (muspec_test::run_command("'" + py + "' -c 'import h5py'").exit_code == 0) return py;
  }
  return {};
}

double parse_double(const std::string& s) { return std::strtod(s.c_str(), nullptr); }
double parse_double(const nlohmann::json& j) { return parse_double(j.get<std::string>()); }

}  // namespace

TEST_CASE("spectra store: h5py and h5dump see the documented layout", "[store]") {
  TempDir dir("store");
  const SpectraFile in = sample_file();
  const std::string path = dir.file("s.h5");
  muspec::write_spectra_h5(path, in);
  const size_t n = in.records.size();
  bool checked = false;

  const std::string py = python_with_h5py();
  if (!py.empty()) {
    checked = true;
    const std::string script = dir.file("check.py");
    muspec_test::write_bytes(script, R"PY(
import json, sys, h5py
f = h5py.File(sys.argv[1], "r")
s = f["summary"]
r = lambda a: [repr(float(x)) for x in a]
rec1 = f["spectra/000001"].attrs
out = {
  "columns": list(s.keys()),
  "sigma_max": r(s["sigma_max"][...]),
  "cond": r(s["cond"][...]),
  "rows": [int(x) for x in s["rows"][...]],
  "analysed": [bool(x) for x in s["analysed"][...]],
  "analysed_is_bool": s["analysed"].dtype == bool,
  "name": list(s["name"].asstr()[...]),
  "name_attr": rec1["name"],
  "name_attr_is_str": isinstance(rec1["name"], str),
  "nonfinite": int(rec1["nonfinite"]),
  "format": f.attrs["format"],
  "format_version": int(f.attrs["format_version"]),
  "command": f.attrs["command"],
  "sigma0": r(f["spectra/000000"][...]),
  "shape2": [int(x) for x in f["spectra/000002"].attrs["tensor_shape"]],
  "qcond0": r(f["spectra/000000"].attrs["quantile_cond"]),
}
try:
  import pandas as pd
  with h5py.File(sys.argv[1], "r") as g:  # the snippet of docs/spectra-h5.md
    df = pd.DataFrame({k: (c.asstr()[...] if c.dtype.kind == "O" else c[...])
                       for k, c in g["summary"].items()})
  out["pandas"] = {"shape": list(df.shape), "name": list(df["name"]),
                   "cond": r(df["cond"]), "first": list(df.columns)[:3]}
except ImportError:
  pass
print(json.dumps(out))
)PY");
    const auto res = muspec_test::run_command("'" + py + "' '" + script + "' '" + path + "'");
    INFO(res.err);
    REQUIRE(res.exit_code == 0);
    const nlohmann::json j = nlohmann::json::parse(res.out);
    CHECK(j["format"] == "muspec-spectra");
    CHECK(j["format_version"] == 1);
    CHECK(j["command"] == in.attributes.at("command"));
    CHECK(j["name_attr_is_str"] == true);
    CHECK(j["name_attr"] == in.records[1].name);
    CHECK(j["nonfinite"] == 4);
    CHECK(j["analysed_is_bool"] == true);
    CHECK(j["columns"][0] == "name");
    CHECK(j["shape2"].get<std::vector<int64_t>>() == std::vector<int64_t>{8, 4, 2});
    REQUIRE(j["sigma_max"].size() == n);
    for (size_t i = 0; i < n; ++i) {
      const SpectrumRecord& r = in.records[i];
      CHECK(same_value(parse_double(j["sigma_max"][i]), summary_value(r, r.summary.sigma_max)));
      CHECK(same_value(parse_double(j["cond"][i]), summary_value(r, r.summary.cond)));
      CHECK(j["analysed"][i].get<bool>() == analysed(r));
      CHECK(j["rows"][i].get<int64_t>() == r.rows);
      CHECK(j["name"][i].get<std::string>() == r.name);
    }
    CHECK(j["sigma0"].get<std::vector<std::string>>() == std::vector<std::string>{"0.0", "1.0", "2.0"});
    CHECK(j["qcond0"][0] == "inf");  // sigma_max / 0
    if (j.contains("pandas")) {
      CHECK(j["pandas"]["shape"][0] == n);
      CHECK(j["pandas"]["name"] == j["name"]);
      CHECK(j["pandas"]["cond"] == j["cond"]);
      CHECK(j["pandas"]["first"].get<std::vector<std::string>>() ==
            std::vector<std::string>{"name", "file", "tensor"});
    } else {
      WARN("pandas not installed: the docs' pandas snippet was not checked");
    }
  }

  if (muspec_test::run_command("h5dump --version").exit_code == 0) {
    checked = true;
    const auto res = muspec_test::run_command("h5dump -y -w 0 -m %.17g -d /summary/sigma_max '" +
                                              path + "'");
    INFO(res.out << res.err);
    REQUIRE(res.exit_code == 0);
    const size_t open = res.out.find("DATA {");
    REQUIRE(open != std::string::npos);
    const size_t close = res.out.find('}', open + 6);
    std::string body = res.out.substr(open + 6, close - open - 6);
    std::replace(body.begin(), body.end(), ',', ' ');
    std::istringstream ss(body);
    std::vector<double> got;
    for (std::string tok; ss >> tok;) got.push_back(parse_double(tok));
    REQUIRE(got.size() == n);
    for (size_t i = 0; i < n; ++i) {
      const double want = summary_value(in.records[i], in.records[i].summary.sigma_max);
      CHECK(same_value(got[i], want));
    }
  }
  if (!checked) WARN("neither h5py nor h5dump available: independent layout check skipped");
}
