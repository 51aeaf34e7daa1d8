// The spectra store (lib/store): round trips, atomic writes, rejection of malformed files, and
// an independent check of the documented layout (raw HDF5 C calls; h5py / h5dump when present).
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "spectra/summary.h"
#include "store/spectra_store.h"
#include "record_compare.h"
#include "store_samples.h"
#include "test_support.h"

#include "raw_hdf5.h"  // to craft malformed files and read the layout back independently

using muspec::InputError;
using muspec::SpectraFile;
using muspec::SpectrumRecord;
using muspec_test::TempDir;
namespace fs = std::filesystem;
using namespace muspec_test::store_samples;

namespace {

std::set<std::string> listing(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

/// Expects read_spectra_h5(path) to throw an InputError naming `path` whose message contains
/// `needle`; returns the error's dataset.
std::string expect_input_error(const std::string& path, const std::string& needle) {
  try {
    muspec::read_spectra_h5(path);
  } catch (const InputError& e) {
    INFO(e.what());
    CHECK(e.file() == path);
    CHECK(std::string(e.what()).find(path) != std::string::npos);
    CHECK(std::string(e.what()).find(needle) != std::string::npos);
    return e.tensor();
  }
  FAIL("no InputError for " << path);
  return {};
}

}  // namespace

TEST_CASE("spectra store: round trip is exact", "[store]") {
  TempDir dir("store");
  const SpectraFile in = sample_file();
  REQUIRE(std::isinf(in.records[0].summary.cond));  // the oracle data do hold inf
  const std::string path = dir.file("spectra.h5");
  muspec::write_spectra_h5(path, in);
  CHECK(listing(dir.path()) == std::set<std::string>{"spectra.h5"});  // no temporary left
  const SpectraFile out = muspec::read_spectra_h5(path);
  CHECK(out.attributes == in.attributes);
  REQUIRE(out.records.size() == in.records.size());
  for (size_t i = 0; i < in.records.size(); ++i) muspec_test::check_same_record(in.records[i], out.records[i]);
}

TEST_CASE("spectra store: the same records give the same bytes, whenever written", "[store]") {
  // libhdf5 stores object modification times (seconds) unless told not to; the fuzz target's
  // mutants of a store written at start-up were not reproducible because of them.
  TempDir dir("store");
  const SpectraFile in = sample_file();
  muspec::write_spectra_h5(dir.file("a.h5"), in);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // into another second
  muspec::write_spectra_h5(dir.file("b.h5"), in);
  const std::string a = muspec_test::read_text(dir.file("a.h5")), b = muspec_test::read_text(dir.file("b.h5"));
  REQUIRE(a.size() > 1000);
  CHECK(a == b);
}

TEST_CASE("spectra store: an empty scan round-trips and overwrites an older file", "[store]") {
  TempDir dir("store");
  const std::string path = dir.file("s.h5");
  muspec::write_spectra_h5(path, sample_file());
  SpectraFile none;
  none.attributes["note"] = "nothing matched";
  muspec::write_spectra_h5(path, none);
  const SpectraFile out = muspec::read_spectra_h5(path);
  CHECK(out.records.empty());
  CHECK(out.attributes == none.attributes);
}

TEST_CASE("spectra store: failed writes leave nothing behind", "[store]") {
  TempDir dir("store");
  SECTION("missing directory") {
    const std::string path = dir.file("missing/sub/s.h5");
    CHECK_THROWS_AS(muspec::write_spectra_h5(path, sample_file()), muspec::Error);
    CHECK(listing(dir.path()).empty());
  }
  SECTION("an invalid record in the middle; an existing file survives") {
    const std::string path = dir.file("s.h5");
    SpectraFile good = sample_file();
    good.records.resize(2);
    muspec::write_spectra_h5(path, good);
    const std::string before = muspec_test::read_text(path);

    SpectraFile bad = sample_file();
    bad.records[2].sigma.push_back(9.0);  // 3 values for a 4 x 2 matrix
    try {
      muspec::write_spectra_h5(path, bad);
      FAIL("no error");
    } catch (const muspec::Error& e) {
      const std::string msg = e.what();
      INFO(msg);
      CHECK(msg.find(path) != std::string::npos);
      CHECK(msg.find("record 2") != std::string::npos);
      CHECK(msg.find("min(rows, cols)") != std::string::npos);
    }
    CHECK(listing(dir.path()) == std::set<std::string>{"s.h5"});
    CHECK(muspec_test::read_text(path) == before);
    CHECK(muspec::read_spectra_h5(path).records.size() == 2);

    const std::string fresh = dir.file("fresh.h5");
    CHECK_THROWS_AS(muspec::write_spectra_h5(fresh, bad), muspec::Error);
    CHECK(listing(dir.path()) == std::set<std::string>{"s.h5"});
  }
  SECTION("values the format cannot hold") {
    SpectraFile f = sample_file();
    std::string needle;
    SECTION("a 70 KB name") {
      f.records[3].name = std::string(70000, 'x');
      needle = "64 KiB";
    }
    SECTION("invalid UTF-8") {
      f.records[1].tensor = "bad\xff\xfe";
      needle = "UTF-8";
    }
    SECTION("a NUL byte") {
      f.attributes["command"] = std::string("a\0b", 3);
      needle = "NUL";
    }
    SECTION("a reserved file attribute") {
      f.attributes["format"] = "mine";
      needle = "reserved";
    }
    SECTION("descending sigma") {
      f.records[0].sigma = {2.0, 1.0, 0.0};
      needle = "ascending";
    }
    SECTION("a spectrum for a matrix that was not analysed") {
      f.records[0].nonfinite = 1;
      needle = "non-finite";
    }
    SECTION("repeated quantile levels") {
      f.records[0].summary.quantiles[1].q = 0.0;
      needle = "repeat";
    }
    SECTION("a quantile ratio above 1") {
      f.records[0].summary.quantiles[1].rel_frob = 5.0;
      needle = "quantile_rel_frob[1] (level 0.5) = 5 is outside [0, 1]";
    }
    SECTION("a NaN quantile ratio of an analysed matrix") {
      f.records[2].summary.quantiles[0].rel_frob = kNaN;
      needle = "record 2";
    }
    SECTION("an infinite singular value") {
      f.records[0].sigma[2] = kInf;
      needle = "sigma[2] is negative, infinite or NaN";
    }
    const std::string path = dir.file("s.h5");
    try {
      muspec::write_spectra_h5(path, f);
      FAIL("no error");
    } catch (const muspec::Error& e) {
      INFO(e.what());
      CHECK(std::string(e.what()).find(needle) != std::string::npos);
    }
    CHECK(listing(dir.path()).empty());
  }
}

TEST_CASE("spectra store: garbage input gives InputError", "[store]") {
  TempDir dir("store");
  SECTION("missing file") { expect_input_error(dir.file("nope.h5"), "nope.h5"); }
  SECTION("a directory") { expect_input_error(dir.path().string(), "regular file"); }
  SECTION("a text file") {
    const std::string path = dir.file("text.h5");
    muspec_test::write_bytes(path, "name,sigma\nw,1.0\n");
    expect_input_error(path, "HDF5");
  }
  SECTION("truncated files") {
    const std::string path = dir.file("s.h5");
    muspec::write_spectra_h5(path, sample_file());
    const std::string bytes = muspec_test::read_text(path);
    REQUIRE(bytes.size() > 2000);
    for (size_t cut : {size_t{0}, size_t{7}, size_t{100}, bytes.size() / 4, bytes.size() / 2,
                       bytes.size() - 1}) {
      INFO("cut at " << cut);
      const std::string t = dir.file("cut.h5");
      muspec_test::write_bytes(t, bytes.substr(0, cut));
      expect_input_error(t, "");
    }
  }
  SECTION("the format attribute renamed (byte patch)") {
    const std::string path = dir.file("s.h5");
    muspec::write_spectra_h5(path, sample_file());
    std::string bytes = muspec_test::read_text(path);
    const std::string key("format\0", 7);
    const size_t at = bytes.find(key);
    REQUIRE(at != std::string::npos);
    REQUIRE(bytes.find(key, at + 1) == std::string::npos);
    bytes[at + 5] = 'X';
    muspec_test::write_bytes(path, bytes);
    expect_input_error(path, "no 'format' attribute");
  }
}

#ifdef MUSPEC_TEST_HDF5
namespace {

/// Minimal RAII for the raw calls below (independent of the store's own helpers).
struct Raw {
  hid_t id;
  herr_t (*closer)(hid_t);
  Raw(hid_t i, herr_t (*c)(hid_t)) : id(i), closer(c) { REQUIRE(i >= 0); }
  ~Raw() { closer(id); }
  Raw(const Raw&) = delete;
  Raw& operator=(const Raw&) = delete;
};

void raw_replace_f64_array(hid_t obj, const char* name, const std::vector<double>& v) {
  REQUIRE(H5Adelete(obj, name) >= 0);
  const hsize_t n = v.size();
  Raw space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  Raw a(H5Acreate2(obj, name, H5T_IEEE_F64LE, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  REQUIRE(H5Awrite(a.id, H5T_NATIVE_DOUBLE, v.data()) >= 0);
}

void raw_replace_f64(hid_t obj, const char* name, double v) {
  if (H5Aexists(obj, name) > 0) REQUIRE(H5Adelete(obj, name) >= 0);
  Raw space(H5Screate(H5S_SCALAR), H5Sclose);
  Raw a(H5Acreate2(obj, name, H5T_IEEE_F64LE, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  REQUIRE(H5Awrite(a.id, H5T_NATIVE_DOUBLE, &v) >= 0);
}

void raw_replace_i64(hid_t obj, const char* name, int64_t v) {
  if (H5Aexists(obj, name) > 0) REQUIRE(H5Adelete(obj, name) >= 0);
  Raw space(H5Screate(H5S_SCALAR), H5Sclose);
  Raw a(H5Acreate2(obj, name, H5T_STD_I64LE, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  REQUIRE(H5Awrite(a.id, H5T_NATIVE_INT64, &v) >= 0);
}

void raw_replace_string(hid_t obj, const char* name, const char* v) {
  if (H5Aexists(obj, name) > 0) REQUIRE(H5Adelete(obj, name) >= 0);
  Raw type(H5Tcopy(H5T_C_S1), H5Tclose);
  REQUIRE(H5Tset_size(type.id, H5T_VARIABLE) >= 0);
  Raw space(H5Screate(H5S_SCALAR), H5Sclose);
  Raw a(H5Acreate2(obj, name, type.id, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  REQUIRE(H5Awrite(a.id, type.id, &v) >= 0);
}

std::vector<double> raw_read_f64(hid_t file, const char* path) {
  Raw d(H5Dopen2(file, path, H5P_DEFAULT), H5Dclose);
  Raw space(H5Dget_space(d.id), H5Sclose);
  REQUIRE(H5Sget_simple_extent_ndims(space.id) == 1);
  hsize_t n = 0;
  H5Sget_simple_extent_dims(space.id, &n, nullptr);
  std::vector<double> v(n);
  if (n > 0) REQUIRE(H5Dread(d.id, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) >= 0);
  return v;
}

std::vector<std::string> raw_read_strings(hid_t file, const char* path) {
  Raw d(H5Dopen2(file, path, H5P_DEFAULT), H5Dclose);
  Raw space(H5Dget_space(d.id), H5Sclose);
  hsize_t n = 0;
  H5Sget_simple_extent_dims(space.id, &n, nullptr);
  Raw type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.id, H5T_VARIABLE);
  H5Tset_cset(type.id, H5T_CSET_UTF8);
  std::vector<char*> p(n, nullptr);
  if (n > 0) REQUIRE(H5Dread(d.id, type.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, p.data()) >= 0);
  std::vector<std::string> v(p.begin(), p.end());
  if (n > 0) H5Dvlen_reclaim(type.id, space.id, H5P_DEFAULT, p.data());
  return v;
}

herr_t collect_link(hid_t, const char* name, const H5L_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->push_back(name);
  return 0;
}

}  // namespace

TEST_CASE("spectra store: layout read back with raw HDF5 calls", "[store]") {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  TempDir dir("store");
  const SpectraFile in = sample_file();
  const std::string path = dir.file("s.h5");
  muspec::write_spectra_h5(path, in);
  Raw f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);

  const size_t n = in.records.size();
  std::vector<std::string> columns;
  {
    Raw g(H5Gopen2(f.id, "/summary", H5P_DEFAULT), H5Gclose);
    REQUIRE(H5Literate(g.id, H5_INDEX_CRT_ORDER, H5_ITER_INC, nullptr, collect_link, &columns) >= 0);
  }
  REQUIRE(columns.size() > 20);
  CHECK(columns.front() == "name");
  for (const std::string& c : columns) {
    INFO("column " << c);
    Raw d(H5Dopen2(f.id, ("/summary/" + c).c_str(), H5P_DEFAULT), H5Dclose);
    Raw space(H5Dget_space(d.id), H5Sclose);
    hsize_t len = 0;
    REQUIRE(H5Sget_simple_extent_ndims(space.id) == 1);
    H5Sget_simple_extent_dims(space.id, &len, nullptr);
    CHECK(len == n);
  }
  const std::vector<double> sigma_max = raw_read_f64(f.id, "/summary/sigma_max");
  const std::vector<double> q_half = raw_read_f64(f.id, "/summary/q0.5_sigma");
  const std::vector<double> q_one_pct = raw_read_f64(f.id, "/summary/q0.01_sigma");
  const std::vector<std::string> names = raw_read_strings(f.id, "/summary/name");
  std::vector<int8_t> analysed_col(n);
  {
    Raw d(H5Dopen2(f.id, "/summary/analysed", H5P_DEFAULT), H5Dclose);
    Raw t(H5Dget_type(d.id), H5Tclose);
    REQUIRE(H5Tget_class(t.id) == H5T_ENUM);  // h5py's bool
    REQUIRE(H5Tget_size(t.id) == 1);
    REQUIRE(H5Dread(d.id, t.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, analysed_col.data()) >= 0);
  }
  REQUIRE(sigma_max.size() == n);
  for (size_t i = 0; i < n; ++i) {
    const SpectrumRecord& r = in.records[i];
    CHECK(same_value(sigma_max[i], summary_value(r, r.summary.sigma_max)));
    CHECK(analysed_col[i] == (analysed(r) ? 1 : 0));
    CHECK(names[i] == r.name);
    // Independent of the summary code: the median of sigma straight from the data.
    if (!r.sigma.empty()) {
      const size_t m = r.sigma.size();
      const double median = m % 2 ? r.sigma[m / 2] : (r.sigma[m / 2 - 1] + r.sigma[m / 2]) / 2;
      CHECK(q_half[i] == Approx(median).epsilon(1e-15));
    } else {
      CHECK(std::isnan(q_half[i]));
    }
  }
  // Only record 2 uses the default levels, which include 0.01.
  CHECK(std::isnan(q_one_pct[0]));
  CHECK(q_one_pct[2] == Approx(1e-300 + 0.01 * (3.5 - 1e-300)));
  CHECK(raw_read_f64(f.id, "/summary/q1_cond")[0] == Approx(1.0));
  CHECK(raw_read_f64(f.id, "/summary/q0_cond")[0] == kInf);
  const std::vector<double> sigma0 = raw_read_f64(f.id, "/spectra/000000");
  CHECK(sigma0 == in.records[0].sigma);
  CHECK(raw_read_f64(f.id, "/spectra/000001").empty());
  CHECK(raw_read_f64(f.id, "/spectra/000004").empty());
}

TEST_CASE("spectra store: an HDF5 file of another kind is rejected", "[store]") {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  TempDir dir("store");
  const std::string path = dir.file("other.h5");
  {
    Raw f(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
    Raw g(H5Gcreate2(f.id, "spectra", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
  }
  CHECK(expect_input_error(path, "not a muspec spectra file").empty());
}

TEST_CASE("spectra store: crafted malformed files are rejected", "[store]") {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  TempDir dir("store");
  const std::string path = dir.file("s.h5");
  muspec::write_spectra_h5(path, sample_file());
  std::string needle, dataset = "/spectra/000001";
  {
    Raw f(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
    Raw d(H5Dopen2(f.id, "/spectra/000001", H5P_DEFAULT), H5Dclose);
    // These edits are to the per-record attributes: remove the /summary marker, if any, as docs/spectra-h5.md
    // asks of anyone editing /spectra (tests/test_store_summary.cpp covers the /summary read).
    if (H5Aexists_by_name(f.id, "/summary", "record_columns", H5P_DEFAULT) > 0)
      REQUIRE(H5Adelete_by_name(f.id, "/summary", "record_columns", H5P_DEFAULT) >= 0);
    SECTION("wrong format string") {
      raw_replace_string(f.id, "format", "muspec-something");
      needle = "muspec-something";
      dataset.clear();
    }
    SECTION("a newer format version") {
      raw_replace_i64(f.id, "format_version", 2);
      needle = "format_version 2";
      dataset.clear();
    }
    SECTION("a non-string file attribute") {
      raw_replace_i64(f.id, "step", 1000);
      needle = "'step' is not a string";
      dataset.clear();
    }
    SECTION("quantile arrays of different lengths") {
      raw_replace_f64_array(d.id, "quantile_sigma", {1, 2, 3, 4});
      needle = "quantile arrays disagree";
    }
    SECTION("a missing attribute") {
      REQUIRE(H5Adelete(d.id, "device") >= 0);
      needle = "'device' is missing";
    }
    SECTION("an attribute of the wrong type") {
      raw_replace_string(d.id, "rows", "7");
      needle = "'rows' is not an integer";
    }
    SECTION("a layer-metric count out of range") {
      raw_replace_i64(d.id, "num_spikes", 1000000);
      needle = "num_spikes 1000000";
    }
    SECTION("sigma longer than min(rows, cols)") {
      Raw d0(H5Dopen2(f.id, "/spectra/000000", H5P_DEFAULT), H5Dclose);
      raw_replace_i64(d0.id, "cols", 2);
      needle = "sigma";
      dataset = "/spectra/000000";
    }
    SECTION("sigma shorter than min(rows, cols)") {
      Raw d0(H5Dopen2(f.id, "/spectra/000000", H5P_DEFAULT), H5Dclose);
      raw_replace_i64(d0.id, "rows", 9);
      raw_replace_i64(d0.id, "cols", 9);
      needle = "min(rows, cols)";
      dataset = "/spectra/000000";
    }
    SECTION("sigma not ascending") {
      Raw d0(H5Dopen2(f.id, "/spectra/000000", H5P_DEFAULT), H5Dclose);
      const double v[3] = {2, 1, 0};
      REQUIRE(H5Dwrite(d0.id, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
      needle = "ascending";
      dataset = "/spectra/000000";
    }
    // Byte-patched summaries of record 0 (sigma 0, 1, 2; levels 0, 0.5, 1): recommend and plan
    // read quantile_rel_frob, so a patched value must never get past the reader.
    SECTION("patched quantile values") {
      Raw d0(H5Dopen2(f.id, "/spectra/000000", H5P_DEFAULT), H5Dclose);
      const muspec::SpectralSummary s = sample_file().records[0].summary;
      REQUIRE(s.quantiles.size() == 3);
      std::vector<double> rel_frob, sigma;
      for (const auto& q : s.quantiles) rel_frob.push_back(q.rel_frob), sigma.push_back(q.sigma);
      dataset = "/spectra/000000";
      SECTION("rel_frob above 1") {
        rel_frob[1] = 5.0;
        raw_replace_f64_array(d0.id, "quantile_rel_frob", rel_frob);
        needle = "quantile_rel_frob[1] (level 0.5) = 5 is outside [0, 1]";
      }
      SECTION("rel_frob NaN") {
        rel_frob[1] = kNaN;
        raw_replace_f64_array(d0.id, "quantile_rel_frob", rel_frob);
        needle = "quantile_rel_frob[1] (level 0.5) = nan is not quantile_sigma / frobenius";
      }
      SECTION("rel_frob slightly off") {
        rel_frob[2] *= 0.5;
        raw_replace_f64_array(d0.id, "quantile_rel_frob", rel_frob);
        needle = "quantile_rel_frob[2]";
      }
      SECTION("rel_max negative") {
        raw_replace_f64_array(d0.id, "quantile_rel_max", {0.0, -0.5, 1.0});
        needle = "quantile_rel_max[1] (level 0.5) = -0.5 is outside [0, 1]";
      }
      SECTION("quantile_sigma not the quantile of sigma") {
        sigma[1] = 1.5;
        raw_replace_f64_array(d0.id, "quantile_sigma", sigma);
        needle = "quantile_sigma[1] (level 0.5) = 1.5 disagrees with sigma (expected 1)";
      }
      SECTION("quantile_sigma negative") {
        sigma[0] = -1.0;
        raw_replace_f64_array(d0.id, "quantile_sigma", sigma);
        needle = "quantile_sigma[0] (level 0) = -1 is negative";
      }
      SECTION("quantile_cond below 1") {
        raw_replace_f64_array(d0.id, "quantile_cond", {kInf, 0.5, 1.0});
        needle = "quantile_cond[1] (level 0.5) = 0.5 is below 1";
      }
      SECTION("frobenius NaN") {
        raw_replace_f64(d0.id, "frobenius", kNaN);
        needle = "frobenius = nan is not a finite";
      }
      SECTION("frobenius below sigma_max (and rel_frob consistent with it)") {
        raw_replace_f64(d0.id, "frobenius", 1.0);
        needle = "frobenius = 1 is smaller than sigma_max = 2";
      }
      SECTION("sigma_max not the largest sigma") {
        raw_replace_f64(d0.id, "sigma_max", 4.0);
        needle = "sigma_max = 4 is not the largest sigma 2";
      }
    }
    SECTION("a record dataset renamed") {
      REQUIRE(H5Lmove(f.id, "/spectra/000001", f.id, "/spectra/extra", H5P_DEFAULT, H5P_DEFAULT) >= 0);
      needle = "missing";
    }
    SECTION("a group in place of a record") {
      REQUIRE(H5Ldelete(f.id, "/spectra/000004", H5P_DEFAULT) >= 0);
      Raw g(H5Gcreate2(f.id, "/spectra/000004", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
      needle = "not a dataset";
      dataset = "/spectra/000004";
    }
  }
  CHECK(expect_input_error(path, needle) == dataset);
}
#else
TEST_CASE("spectra store: raw HDF5 checks", "[store]") {
  WARN("hdf5.h not found by the test build: raw-HDF5 layout and crafted-file tests skipped");
}
#endif

