// `muspec report` (analysis/report/html_report): what the page holds without a browser (the
// browser checks are tests/python/test_report_browser.py). Layer-metric columns are added to a
// store with the HDF5 C API directly (an independent writer), then must appear with their
// values; tensor names with markup must come out escaped; the CLI refuses bad inputs and
// outputs with exit code 2 and leaves an existing page untouched.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>

#include <nlohmann/json.hpp>
#include <vector>

#include "core/error.h"
#include "report/html_report.h"
#include "store/spectra_store.h"
#include "test_support.h"

#include "raw_hdf5.h"

using namespace muspec;
using namespace muspec::analysis;
using muspec_test::read_text;
using muspec_test::run_muspec;
using muspec_test::TempDir;

namespace {

const std::string kHostile = "layers.0.mlp.up_proj.weight</td><script>alert(1)</script>&\"'";

SpectrumRecord record(const std::string& name, int64_t layer, std::vector<double> sigma) {
  SpectrumRecord r;
  r.name = r.tensor = r.parameter = name;
  r.file = "model.safetensors";
  r.rows = r.cols = static_cast<int64_t>(sigma.size());
  r.tensor_shape = {r.rows, r.cols};
  r.dtype = "F32", r.transform = "none", r.method = "svd", r.device = "cpu";
  r.run = "run<1>", r.step = 10, r.kind = "weight", r.op_type = "up";
  r.layer = layer, r.num_layers = 2, r.rel_depth = static_cast<double>(layer);
  double frob2 = 0;
  for (const double s : sigma) frob2 += s * s;
  r.summary = summarize_spectrum(sigma, std::sqrt(frob2), 0.0, {0.05, 0.5});
  r.sigma = std::move(sigma);
  return r;
}

std::string write_store(const TempDir& dir) {
  SpectraFile f;
  f.attributes = {{"backend", "cpu: test"}};
  f.records.push_back(record(kHostile, 0, {0.5, 1.0, 2.0, 4.0}));
  f.records.push_back(record("model.layers.1.mlp.up_proj.weight", 1, {0.1, 0.3, 3.0, 5.0}));
  SpectrumRecord bad = record("model.layers.1.mlp.down_proj.weight", 1, {1.0, 2.0});
  bad.sigma.clear();  // not analysed: the scan found non-finite entries
  bad.nonfinite = 3;
  bad.summary.sigma_max = NAN;
  f.records.push_back(bad);
  const std::string path = dir.file("spectra.h5");
  write_spectra_h5(path, f);
  return path;
}

#ifdef MUSPEC_TEST_HDF5
template <class T>
void add_summary_column(const std::string& path, const char* name, hid_t file_type, hid_t mem_type, std::vector<T> v) {
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  REQUIRE(f >= 0);
  const std::string at = std::string("/summary/") + name;
  if (H5Lexists(f, at.c_str(), H5P_DEFAULT) > 0) REQUIRE(H5Ldelete(f, at.c_str(), H5P_DEFAULT) >= 0);  // the writer's column
  const hsize_t n = v.size();
  const hid_t space = H5Screate_simple(1, &n, nullptr);
  const hid_t d = H5Dcreate2(f, at.c_str(), file_type, space, H5P_DEFAULT,
                             H5P_DEFAULT, H5P_DEFAULT);
  REQUIRE(d >= 0);
  REQUIRE(H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) >= 0);
  REQUIRE(H5Dclose(d) >= 0);
  REQUIRE(H5Sclose(space) >= 0);
  REQUIRE(H5Fclose(f) >= 0);
}
#endif

/// The text between `open` and the next `close` at or after `pos` (and where it ends).
std::string between(const std::string& s, const std::string& open, const std::string& close, size_t& pos) {
  const size_t a = s.find(open, pos);
  if (a == std::string::npos) return pos = std::string::npos, "";
  const size_t b = s.find(close, a + open.size());
  REQUIRE(b != std::string::npos);
  pos = b + close.size();
  return s.substr(a + open.size(), b - a - open.size());
}

/// The cells of the table column whose header has data-key `key`, in row order, as the page's
/// script shows them: the rows are JSON ([record, name, kind, op, "shown|sort value", ...]) in
/// the script element after the table. (Plain string search: std::regex recurses per character
/// and could overflow the stack under ASan.)
std::vector<std::string> column_values(const std::string& page, const std::string& key) {
  size_t pos = 0;
  const std::string head = between(page, "<thead><tr>", "</tr></thead>", pos);
  REQUIRE(pos != std::string::npos);
  size_t column = 0, at = 0;
  for (std::string th; (th = between(head, "<th", "</th>", at)), at != std::string::npos; ++column)
    if (th.find("data-key=\"" + key + "\"") != std::string::npos) break;
  REQUIRE(at != std::string::npos);
  const nlohmann::json rows = nlohmann::json::parse(between(page, "class=\"rows\" id=\"rows-t0\">", "</script>", pos));
  std::vector<std::string> out;
  for (const auto& row : rows) {
    const std::string cell = row.at(column + 1).get<std::string>();  // row[0] is the record index
    out.push_back(column < 3 ? cell : cell.substr(0, cell.find('|')));
  }
  return out;
}

}  // namespace

TEST_CASE("report: markup in tensor and run names is escaped", "[report]") {
  TempDir dir("report");
  const std::string store = write_store(dir);
  const std::string page = html_report(load_report_inputs({store}));
  CHECK(page.find("<script>alert(1)") == std::string::npos);
  CHECK(page.find("run<1>") == std::string::npos);
  // In the rows' JSON, '<', '>' and '&' are \u escapes: nothing can close the script element.
  CHECK(page.find("layers.0.mlp.up_proj.weight\\u003c/td\\u003e\\u003cscript\\u003ealert(1)\\u003c/script\\u003e\\u0026\\\"'") !=
        std::string::npos);
  CHECK(column_values(page, "name").at(0) == kHostile);
  CHECK(page.find("run&lt;1&gt;") != std::string::npos);
  // The page needs nothing from the network.
  CHECK(page.find("http://") == page.find("http://www.w3.org/2000/svg"));
  CHECK(page.find("https://") == std::string::npos);
}

TEST_CASE("report: layer-metric columns appear exactly when the store has them", "[report]") {
  TempDir dir("report");
  const std::string store = write_store(dir);
  const std::string without = html_report(load_report_inputs({store}));
  for (const std::string& name : layer_metric_names())
    CHECK(without.find("data-key=\"" + name + "\"") == std::string::npos);
#ifdef MUSPEC_TEST_HDF5
  add_summary_column<double>(store, "alpha", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {2.75, 4.125, NAN});
  add_summary_column<int64_t>(store, "num_spikes", H5T_STD_I64LE, H5T_NATIVE_INT64, {3, 0, 0});  // integers too
  add_summary_column<double>(store, "mp_softrank", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {0.5});  // wrong length: left out
  const ReportInputs in = load_report_inputs({store});
  REQUIRE(in.metrics.size() == 2);
  const std::string page = html_report(in);
  CHECK(page.find("data-key=\"mp_softrank\"") == std::string::npos);
  CHECK(column_values(page, "alpha") == std::vector<std::string>{"2.75", "4.125", "–"});
  CHECK(column_values(page, "num_spikes") == std::vector<std::string>{"3", "0", "0"});
  CHECK(column_values(page, "sigma_max") == std::vector<std::string>{"4", "5", "–"});
#endif
}

TEST_CASE("report CLI: inputs, outputs and exit codes", "[report][cli]") {
  TempDir dir("report");
  write_store(dir);
  const std::string page = dir.file("report.html");
  auto r = run_muspec("report '" + dir.path().string() + "' -o '" + page + "'");
  REQUIRE(r.exit_code == 0);
  const std::string first = read_text(page);
  CHECK(first.find("id=\"ov-matrices\">3<") != std::string::npos);
  CHECK(first.find("id=\"ov-not-analysed\">1<") != std::string::npos);
  CHECK(first.find("<li>model.layers.1.mlp.down_proj.weight in model.safetensors: 3 non-finite entries</li>") !=
        std::string::npos);
  CHECK(first.rfind("</html>\n") == first.size() - 8);

  r = run_muspec("report '" + dir.file("spectra.h5") + "' -o '" + dir.file("report.svg") + "'");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(".html") != std::string::npos);
  muspec_test::write_bytes(dir.file("notes.txt"), "hello");
  r = run_muspec("report '" + dir.file("notes.txt") + "' -o '" + page + "'");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("notes.txt") != std::string::npos);
  muspec_test::write_bytes(dir.file("broken.json"), "{\"format\": \"muspec.ns_config\", \"version\": 1}");
  r = run_muspec("report '" + dir.file("broken.json") + "' -o '" + page + "'");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("broken.json") != std::string::npos);
  muspec_test::write_bytes(dir.file("fake.h5"), "not hdf5");
  r = run_muspec("report '" + dir.file("fake.h5") + "' -o '" + page + "'");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("fake.h5") != std::string::npos);
  CHECK(read_text(page) == first);  // failed runs leave the existing page as it was
}
