// The spectra store's fast read through its /summary columns (lib/store/summary_read.h): the
// oracle is the record-by-record read of the same file (the reader's path for stores without
// the /summary marker), which every field must equal; /summary is untrusted input, so every
// broken column must send the read back to that path with the same result.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "spectra/layer_metrics.h"
#include "spectra/summary.h"
#include "store/spectra_store.h"
#include "test_support.h"

#include "raw_hdf5.h"
#include "record_compare.h"

#ifdef MUSPEC_TEST_HDF5

using muspec::SpectraFile;
using muspec::SpectrumRecord;
using muspec_test::TempDir;
namespace fs = std::filesystem;

namespace {


SpectrumRecord record(const std::string& name, std::vector<double> sigma, const std::vector<double>& levels) {
  SpectrumRecord r;
  r.name = r.tensor = r.parameter = name;
  r.file = "step100/model.safetensors";
  r.rows = static_cast<int64_t>(sigma.size()) + 2;
  r.cols = static_cast<int64_t>(sigma.size());
  r.tensor_shape = {r.rows, r.cols};
  r.dtype = "BF16", r.transform = "none", r.method = "gram", r.device = "cpu", r.run = "run-α", r.kind = "weight";
  r.step = 100, r.model_params = 123456, r.params_source = "manifest", r.op_type = "q";
  r.layer = 2, r.num_layers = 4, r.rel_depth = 2.0 / 3.0, r.muon = true, r.floor = 1e-3;
  double frob2 = 0;
  for (double s : sigma) frob2 += s * s;
  r.summary = muspec::summarize_spectrum(sigma, std::sqrt(frob2) * 1.01, r.floor, levels);
  r.layer_metrics = muspec::compute_layer_metrics(sigma, r.rows, r.cols, r.floor);
  r.sigma = std::move(sigma);
  return r;
}

std::vector<double> power_spectrum(size_t n, double a) {
  std::vector<double> s(n);
  for (size_t i = 0; i < n; ++i) s[i] = std::pow(static_cast<double>(i + 1), a);
  return s;  // ascending for a > 0
}

/// Records of every sort the fast path must reproduce: a 3-D slice, a transposed (Conv1D)
/// matrix, a sharded checkpoint, a record with only some levels, sigma_min = 0 (cond = inf),
/// a matrix with NaN entries and an empty one (both read record by record).
SpectraFile varied_file() {
  const std::vector<double> levels = {0.01, 0.05, 0.5, 0.95};
  SpectraFile f;
  f.attributes = {{"backend", "cpu"}, {"quantiles", "[0.01,0.05,0.5,0.95]"}};
  for (int i = 0; i < 6; ++i) f.records.push_back(record("layers." + std::to_string(i) + ".w", power_spectrum(20 + i, 0.7 + 0.1 * i), levels));
  f.records[1].slice = 3, f.records[1].tensor_shape = {8, 22, 20}, f.records[1].name = "experts.w[3]";
  f.records[2].transposed = true, f.records[2].transform = "sign", f.records[2].device = "cuda";
  f.records[3].sharded = "dcp", f.records[3].shards = 4, f.records[3].muon = false, f.records[3].layer = -1, f.records[3].rel_depth = -1;
  f.records[4] = record("partial", power_spectrum(9, 1.5), {0.05, 0.95});  // a subset, in column order
  f.records[5] = record("rank-deficient", {0.0, 0.0, 1.0, 2.0, 3.0}, levels);
  SpectrumRecord nan = record("nan.w", power_spectrum(4, 1.0), levels);
  nan.sigma.clear(), nan.nonfinite = 3, nan.layer_metrics = {};
  nan.summary.sigma_max = 0, nan.summary.frobenius = 7;  // unanalysed: any summary, kept as written
  f.records.insert(f.records.begin() + 2, nan);
  SpectrumRecord empty;
  empty.name = empty.tensor = "zero";
  empty.cols = 5, empty.tensor_shape = {0, 5};
  f.records.push_back(empty);
  f.scan_order = {6, 5, 4, 3, 2, 1, 0, 7};
  return f;
}

void check_same(const SpectraFile& a, const SpectraFile& b) {
  CHECK(a.attributes == b.attributes);
  CHECK(a.scan_order == b.scan_order);
  REQUIRE(a.records.size() == b.records.size());
  for (size_t i = 0; i < a.records.size(); ++i) muspec_test::check_same_record(a.records[i], b.records[i]);
}

/// Edits an HDF5 file in place with the C API.
void edit(const std::string& path, const std::function<void(hid_t)>& fn) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  REQUIRE(f >= 0);
  fn(f);
  REQUIRE(H5Fclose(f) >= 0);
}

bool has_marker(const std::string& path) {
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  REQUIRE(f >= 0);
  const htri_t yes = H5Aexists_by_name(f, "/summary", "record_columns", H5P_DEFAULT);
  H5Fclose(f);
  return yes > 0;
}

/// The store as an older muspec wrote it (no /summary marker): read record by record.
std::string without_marker(const std::string& path, const std::string& copy) {
  fs::copy_file(path, copy, fs::copy_options::overwrite_existing);
  edit(copy, [](hid_t f) { REQUIRE(H5Adelete_by_name(f, "/summary", "record_columns", H5P_DEFAULT) >= 0); });
  return copy;
}

void replace_dataset(hid_t f, const char* path, hid_t type, const void* data, hsize_t n) {
  REQUIRE(H5Ldelete(f, path, H5P_DEFAULT) >= 0);
  const hid_t space = H5Screate_simple(1, &n, nullptr);
  const hid_t d = H5Dcreate2(f, path, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  REQUIRE(d >= 0);
  REQUIRE(H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
  H5Dclose(d);
  H5Sclose(space);
}

void replace_strings(hid_t f, const char* path, const std::vector<const char*>& v) {
  const hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  replace_dataset(f, path, t, v.data(), v.size());
  H5Tclose(t);
}

}  // namespace

TEST_CASE("store summary read: equals the record-by-record read field by field", "[store]") {
  TempDir dir("sumread");
  const SpectraFile written = varied_file();
  const std::string path = dir.file("s.h5");
  muspec::write_spectra_h5(path, written);
  REQUIRE(has_marker(path));
  const SpectraFile by_record = muspec::read_spectra_h5(without_marker(path, dir.file("old.h5")));
  const SpectraFile fast = muspec::read_spectra_h5(path);
  check_same(written, by_record);  // what was written (the writer's own records)
  check_same(by_record, fast);

  // Summaries only: every field but the analysed records' sigma.
  muspec::SpectraReadOptions summaries;
  summaries.sigma = false;
  const SpectraFile light = muspec::read_spectra_h5(path, summaries);
  REQUIRE(light.records.size() == by_record.records.size());
  for (size_t i = 0; i < light.records.size(); ++i) {
    const bool analysed = by_record.records[i].nonfinite == 0 && !by_record.records[i].sigma.empty();
    muspec_test::check_same_record(by_record.records[i], light.records[i], !analysed);
    if (analysed) CHECK(light.records[i].sigma.empty());
  }
  // An old store read without sigma still gets it (the record-by-record path reads it anyway).
  const SpectraFile old_light = muspec::read_spectra_h5(dir.file("old.h5"), summaries);
  check_same(by_record, old_light);
}

TEST_CASE("store summary read: a marked store is read from /summary, an unmarked one from the attributes", "[store]") {
  TempDir dir("sumread");
  const std::string path = dir.file("s.h5");
  muspec::write_spectra_h5(path, varied_file());
  // An attribute edit that no check can see (a run name): only the attribute path reports it.
  edit(path, [](hid_t f) {
    const hid_t d = H5Dopen2(f, "/spectra/000000", H5P_DEFAULT);
    REQUIRE(H5Adelete(d, "run") >= 0);
    const hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    const hid_t space = H5Screate(H5S_SCALAR);
    const hid_t a = H5Acreate2(d, "run", t, space, H5P_DEFAULT, H5P_DEFAULT);
    const char* v = "edited";
    REQUIRE(H5Awrite(a, t, &v) >= 0);
    H5Aclose(a), H5Sclose(space), H5Tclose(t), H5Dclose(d);
  });
  CHECK(muspec::read_spectra_h5(path).records[0].run == "run-α");
  CHECK(muspec::read_spectra_h5(without_marker(path, dir.file("old.h5"))).records[0].run == "edited");
}

TEST_CASE("store summary read: records whose levels are out of column order are read record by record", "[store]") {
  TempDir dir("sumread");
  SpectraFile f = varied_file();
  f.records[0] = record("reordered", power_spectrum(6, 1.0), {0.5, 0.05});  // 0.05 after 0.5
  const std::string path = dir.file("s.h5");
  muspec::write_spectra_h5(path, f);
  CHECK_FALSE(has_marker(path));
  check_same(f, muspec::read_spectra_h5(path));
}

TEST_CASE("store summary read: a broken /summary falls back to the attributes with the same records", "[store]") {
  TempDir dir("sumread");
  const std::string good = dir.file("good.h5"), path = dir.file("s.h5");
  muspec::write_spectra_h5(good, varied_file());
  const SpectraFile intact = muspec::read_spectra_h5(good);
  fs::copy_file(good, path);
  const size_t n = intact.records.size();
  bool sigma_free_detects = true;  // whether the summaries-only read must also notice the damage
  SECTION("a column one row short") {
    std::vector<double> v(n - 1, 1.0);
    edit(path, [&](hid_t f) { replace_dataset(f, "/summary/sigma_max", H5T_NATIVE_DOUBLE, v.data(), v.size()); });
  }
  SECTION("a missing column") {
    edit(path, [](hid_t f) { REQUIRE(H5Ldelete(f, "/summary/transposed", H5P_DEFAULT) >= 0); });
  }
  SECTION("an integer column stored as strings") {
    std::vector<const char*> v(n, "7");
    edit(path, [&](hid_t f) { replace_strings(f, "/summary/rows", v); });
  }
  SECTION("a bool other than 0 or 1") {
    std::vector<int8_t> v(n, 2);
    edit(path, [&](hid_t f) { replace_dataset(f, "/summary/muon", H5T_NATIVE_INT8, v.data(), v.size()); });
  }
  SECTION("an unparsable tensor_shape") {
    std::vector<const char*> v(n, "8x-2");
    edit(path, [&](hid_t f) { replace_strings(f, "/summary/tensor_shape", v); });
  }
  SECTION("an analysed flag on a matrix that was not analysed") {
    std::vector<int8_t> v(n, 1);
    edit(path, [&](hid_t f) { replace_dataset(f, "/summary/analysed", H5T_NATIVE_INT8, v.data(), v.size()); });
  }
  SECTION("a quantile that disagrees with sigma (stale /summary)") {
    std::vector<double> v(n, 0.5);
    edit(path, [&](hid_t f) { replace_dataset(f, "/summary/q0.5_rel_frob", H5T_NATIVE_DOUBLE, v.data(), v.size()); });
    sigma_free_detects = false;  // in range: only sigma shows it
  }
  SECTION("a record fewer in /spectra than rows in /summary") {
    edit(path, [](hid_t f) {
      REQUIRE(H5Ldelete(f, "/spectra/000007", H5P_DEFAULT) >= 0);
      REQUIRE(H5Ldelete(f, "/scan_order", H5P_DEFAULT) >= 0);  // else both reads refuse its length
    });
  }
  REQUIRE(has_marker(path));
  // The oracle: the same damaged file read record by record.
  const SpectraFile oracle = muspec::read_spectra_h5(without_marker(path, dir.file("old.h5")));
  if (oracle.records.size() == n) check_same(intact, oracle);  // /summary damage leaves the records as they were
  check_same(oracle, muspec::read_spectra_h5(path));
  if (sigma_free_detects) {
    muspec::SpectraReadOptions summaries;
    summaries.sigma = false;
    check_same(oracle, muspec::read_spectra_h5(path, summaries));  // fell back: sigma is there too
  }
}

TEST_CASE("store summary read: a soft link in /spectra is refused by the summaries-only read too", "[store][hostile]") {
  TempDir dir("sumread");
  const std::string path = dir.file("s.h5");
  muspec::write_spectra_h5(path, varied_file());
  edit(path, [](hid_t f) {
    REQUIRE(H5Ldelete(f, "/spectra/000001", H5P_DEFAULT) >= 0);
    REQUIRE(H5Lcreate_soft("/spectra/000000", f, "/spectra/000001", H5P_DEFAULT, H5P_DEFAULT) >= 0);
  });
  muspec::SpectraReadOptions summaries;
  summaries.sigma = false;
  try {
    muspec::read_spectra_h5(path, summaries);
    FAIL("no InputError");
  } catch (const muspec::InputError& e) {
    CHECK_THAT(e.what(), Catch::Contains("soft link"));
  }
}

#endif  // MUSPEC_TEST_HDF5
