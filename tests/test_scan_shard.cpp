// scan --shard I/N and merge (scan/shard.h, tools/cli/cmd_merge.cpp): the partition against a
// brute-force optimum, and sharded scans joined by merge against the one-process scan of the
// same inputs (every record field, bit for bit, in the same order).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "core/error.h"
#include "scan/shard.h"
#include "spectra/layer_metrics.h"
#include "store/spectra_store.h"
#include "test_support.h"

using muspec_test::run_muspec;
using muspec_test::TempDir;

namespace {

/// Bit-for-bit equality of doubles (NaN equals NaN of the same bits).
bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

/// Empty when the two records agree in every field; else the first field that differs.
std::string record_difference(const muspec::SpectrumRecord& a, const muspec::SpectrumRecord& b) {
  if (std::tie(a.name, a.tensor, a.slice, a.file, a.rows, a.cols, a.tensor_shape, a.dtype, a.transform) !=
      std::tie(b.name, b.tensor, b.slice, b.file, b.rows, b.cols, b.tensor_shape, b.dtype, b.transform))
    return "identity";
  if (std::tie(a.run, a.step, a.model_params, a.params_source, a.sharded, a.shards, a.kind, a.parameter, a.op_type, a.layer,
               a.num_layers, a.muon, a.transposed, a.method, a.device, a.nonfinite) !=
      std::tie(b.run, b.step, b.model_params, b.params_source, b.sharded, b.shards, b.kind, b.parameter, b.op_type, b.layer,
               b.num_layers, b.muon, b.transposed, b.method, b.device, b.nonfinite))
    return "labels";
  if (!same_bits(a.rel_depth, b.rel_depth) || !same_bits(a.floor, b.floor)) return "rel_depth/floor";
  if (a.sigma.size() != b.sigma.size()) return "sigma length";
  for (size_t i = 0; i < a.sigma.size(); ++i)
    if (!same_bits(a.sigma[i], b.sigma[i])) return "sigma[" + std::to_string(i) + "]";
  const auto &s = a.summary, &t = b.summary;
  for (auto [x, y] : {std::pair{s.sigma_max, t.sigma_max}, {s.sigma_min, t.sigma_min}, {s.frobenius, t.frobenius},
                      {s.nuclear, t.nuclear}, {s.cond, t.cond}, {s.stable_rank, t.stable_rank}, {s.effective_rank, t.effective_rank}})
    if (!same_bits(x, y)) return "summary";
  if (s.below_floor != t.below_floor || s.quantiles.size() != t.quantiles.size()) return "below_floor/quantiles";
  for (size_t i = 0; i < s.quantiles.size(); ++i) {
    const auto &p = s.quantiles[i], &q = t.quantiles[i];
    if (!same_bits(p.q, q.q) || !same_bits(p.sigma, q.sigma) || !same_bits(p.rel_max, q.rel_max) ||
        !same_bits(p.rel_frob, q.rel_frob) || !same_bits(p.cond, q.cond))
      return "quantile " + std::to_string(i);
  }
  for (const muspec::LayerMetricField& f : muspec::layer_metric_fields()) {
    const bool same = f.real ? same_bits(a.layer_metrics.*f.real, b.layer_metrics.*f.real)
                             : a.layer_metrics.*f.count == b.layer_metrics.*f.count;
    if (!same) return std::string("layer metric ") + f.name;
  }
  if (a.layer_metrics.note != b.layer_metrics.note) return "layer_metrics_note";
  return "";
}

}  // namespace

/// Shared with test_scan_journal.cpp: the two stores hold the same records in the same order.
void require_same_store(const std::string& expected_path, const std::string& actual_path) {
  const muspec::SpectraFile want = muspec::read_spectra_h5(expected_path), got = muspec::read_spectra_h5(actual_path);
  REQUIRE(got.records.size() == want.records.size());
  for (size_t i = 0; i < want.records.size(); ++i) {
    INFO("record " << i << " " << want.records[i].name << " vs " << got.records[i].name);
    REQUIRE(record_difference(want.records[i], got.records[i]) == "");
  }
  for (const char* key : {"quantiles", "muspec_version", "format_version"})
    CHECK((want.attributes.count(key) ? want.attributes.at(key) : "") == (got.attributes.count(key) ? got.attributes.at(key) : ""));
  CHECK(got.scan_order.empty());
}

TEST_CASE("shard: --shard I/N is parsed strictly", "[shard]") {
  const auto s = muspec::parse_shard("2/8");
  CHECK(s.index == 2);
  CHECK(s.count == 8);
  for (const char* bad : {"0/3", "4/3", "1/0", "/3", "1/", "a/b", "1/3/4", "-1/3", "1 /3", "3", ""})
    CHECK_THROWS_AS(muspec::parse_shard(bad), muspec::UsageError);
}

TEST_CASE("shard: the greedy partition is within 4/3 of the brute-force optimum", "[shard]") {
  std::mt19937 rng(17);
  for (int trial = 0; trial < 40; ++trial) {
    const int n = 3 + static_cast<int>(rng() % 7), parts = 2 + static_cast<int>(rng() % 2);
    std::vector<double> costs;
    for (int i = 0; i < n; ++i) costs.push_back(muspec::matrix_cost(64 + rng() % 2048, 64 + rng() % 2048, 1 + rng() % 3));
    const std::vector<int> part = muspec::assign_parts(costs, parts);
    REQUIRE(part == muspec::assign_parts(costs, parts));  // a pure function
    std::vector<double> load(parts, 0);
    for (int i = 0; i < n; ++i) {
      REQUIRE(part[i] >= 0);
      REQUIRE(part[i] < parts);
      load[part[i]] += costs[i];
    }
    // Oracle: the best makespan over every assignment (parts^n <= 3^9).
    double best = INFINITY;
    std::vector<int> a(n, 0);
    for (;;) {
      std::vector<double> l(parts, 0);
      for (int i = 0; i < n; ++i) l[a[i]] += costs[i];
      best = std::min(best, *std::max_element(l.begin(), l.end()));
      int k = 0;
      while (k < n && ++a[k] == parts) a[k++] = 0;
      if (k == n) break;
    }
    // Graham's bound for longest-processing-time-first: 4/3 - 1/(3 parts).
    CHECK(*std::max_element(load.begin(), load.end()) <= best * (4.0 / 3 - 1.0 / (3 * parts)) * (1 + 1e-12));
  }
}

TEST_CASE("shard: the cost is the Gram product plus the eigensolver", "[shard]") {
  CHECK(muspec::matrix_cost(10, 20, 1) == 10.0 * 20 * 10 + 1000);
  CHECK(muspec::matrix_cost(20, 10, 3) == 3 * (10.0 * 20 * 10 + 1000));
}

namespace {

/// Scans `inputs` whole and in `n` parts, merges the parts, and compares.
void check_sharded_equals_whole(const std::string& inputs, int n, const std::string& extra = "") {
  TempDir dir("shard");
  const std::string whole = dir.file("whole.h5");
  const auto w = run_muspec("scan " + inputs + " -o " + whole + " --summary " + dir.file("whole.csv") + " --json " +
                            dir.file("whole.json") + " -q --threads 2 " + extra);
  REQUIRE(w.exit_code <= 1);
  std::string parts;
  for (int i = 1; i <= n; ++i) {
    const std::string part = dir.file("part" + std::to_string(i) + ".h5");
    const auto r = run_muspec("scan " + inputs + " --shard " + std::to_string(i) + "/" + std::to_string(n) + " -o " + part +
                              " -q --threads 2 " + extra);
    INFO(r.err);
    REQUIRE(r.exit_code <= 1);
    parts = part + " " + parts;  // given in reverse: merge orders them itself
  }
  const auto m = run_muspec("merge " + parts + " -o " + dir.file("merged.h5") + " --summary " + dir.file("merged.csv") +
                            " --json " + dir.file("merged.json"));
  INFO(m.err);
  REQUIRE(m.exit_code == 0);
  require_same_store(whole, dir.file("merged.h5"));
  // The summary files are those of the one-process scan, byte for byte.
  CHECK(muspec_test::read_text(dir.file("merged.csv")) == muspec_test::read_text(dir.file("whole.csv")));
  CHECK(muspec_test::read_text(dir.file("merged.json")) == muspec_test::read_text(dir.file("whole.json")));
}

}  // namespace

// kSanitized (test_support.h): the ASan build runs the same suite, smaller inputs there

TEST_CASE("shard: sample_data in 3 parts merges into the one-process scan", "[shard][cli][e2e]") {
  const std::string data = muspec_test::source_dir() + "/sample_data";
  check_sharded_equals_whole(muspec_test::kSanitized ? data + "/runs/d16 " + data + "/numpy" : data, 3);
}

/// A float32 .npy file (numpy's format: magic, version 1.0, header dict padded to 64 bytes).
/// Shared with test_scan_mpi.cpp.
void write_npy(const std::string& path, const std::vector<int64_t>& shape, const std::vector<float>& data) {
  std::string dims;
  for (int64_t d : shape) dims += std::to_string(d) + ",";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  header += std::string(63 - (10 + header.size()) % 64, ' ') + "\n";
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
  bytes += static_cast<char>(header.size() & 0xff), bytes += static_cast<char>(header.size() >> 8);
  bytes += header;
  bytes.append(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(float));
  muspec_test::write_bytes(path, bytes);
}

TEST_CASE("shard: a synthetic set with stacks, NaN and more parts than matrices", "[shard][cli]") {
  TempDir src("shardsrc");
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  std::vector<float> stack(5 * 20 * 12), nan_matrix(16 * 16);
  for (float& x : stack) x = normal(rng);
  for (float& x : nan_matrix) x = normal(rng);
  nan_matrix[37] = NAN;
  write_npy(src.file("experts.npy"), {5, 20, 12}, stack);  // a stack of 5 matrices: one job
  write_npy(src.file("broken.npy"), {16, 16}, nan_matrix);
  for (auto [shape, count, seed] : {std::tuple{"40x24", 3, 1}, {"96x64", 2, 2}, {"8x300", 4, 3}}) {
    const auto r = run_muspec("synth " + src.path().string() + " --spectrum power:0.5 --shape " + shape + " --count " +
                              std::to_string(count) + " --seed " + std::to_string(seed) + " --name s" + std::to_string(seed));
    REQUIRE(r.exit_code == 0);
  }
  check_sharded_equals_whole(src.path().string() + " " + muspec_test::source_dir() + "/sample_data/numpy", 4);
  check_sharded_equals_whole(src.file("experts.npy") + " " + src.file("broken.npy"), 3);  // 2 matrices: one part is empty
}

TEST_CASE("merge: refuses parts of other scans, repeated parts, missing parts and plain stores", "[shard][cli]") {
  TempDir dir("mergebad");
  const std::string in = muspec_test::source_dir() + "/sample_data/synthetic";
  auto scan = [&](const std::string& args, const std::string& out) {
    REQUIRE(run_muspec("scan " + in + " " + args + " -o " + dir.file(out) + " -q").exit_code == 0);
    return dir.file(out);
  };
  const std::string p1 = scan("--shard 1/2", "p1.h5"), p2 = scan("--shard 2/2", "p2.h5");
  const std::string other = scan("--shard 2/2 --quantiles 0.5", "other.h5"), whole = scan("", "whole.h5");
  const std::string p13 = scan("--shard 1/3", "p13.h5");
  const std::string out = dir.file("m.h5");
  auto merge_err = [&](const std::string& parts) {
    const auto r = run_muspec("merge " + parts + " -o " + out);
    CHECK(r.exit_code == 2);
    CHECK_FALSE(muspec_test::fs::exists(out));
    return r.err;
  };
  CHECK_THAT(merge_err(p1 + " " + other), Catch::Contains(other) && Catch::Contains("another scan"));
  CHECK_THAT(merge_err(p1 + " " + p1 + " " + p2), Catch::Contains("again"));
  CHECK_THAT(merge_err(p1), Catch::Contains("missing part 2/2"));
  CHECK_THAT(merge_err(p1 + " " + whole), Catch::Contains(whole) && Catch::Contains("--shard"));
  CHECK_THAT(merge_err(p1 + " " + p13), Catch::Contains(p13) && Catch::Contains("part 1/3"));
  CHECK(run_muspec("merge " + p2 + " " + p1 + " -o " + out).exit_code == 0);
}
