// scan/scan_scheduler: the cost model's choices, and records that do not depend on them
// (same order, bit-identical values, whether matrices run alone or side by side).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <set>

#include "scan/scan.h"
#include "scan/scan_scheduler.h"
#include "scan/synthetic.h"
#include "test_support.h"

using namespace muspec;
using muspec_test::TempDir;

namespace {

void write_npy_f32(const std::string& path, int64_t m, int64_t n, const std::vector<double>& x) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(m) + ", " +
                       std::to_string(n) + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>(header.size() >> 8);
  bytes += header;
  std::vector<float> f(x.begin(), x.end());
  bytes.append(reinterpret_cast<const char*>(f.data()), f.size() * sizeof(float));
  muspec_test::write_bytes(path, bytes);
}

class ScheduleOverride {
 public:
  explicit ScheduleOverride(const char* value) {
    if (value) setenv("MUSPEC_SCAN_SCHEDULE", value, 1);
    else unsetenv("MUSPEC_SCAN_SCHEDULE");
  }
  ~ScheduleOverride() { unsetenv("MUSPEC_SCAN_SCHEDULE"); }
};

}  // namespace

TEST_CASE("the cost model runs one large matrix alone and many side by side", "[scan][scheduler]") {
  const CpuSchedule one = plan_cpu_schedule({{4096, 4096, 1}}, 4);
  CHECK(one.alone.size() == 1);
  CHECK(one.side_by_side.empty());

  const std::vector<MatrixShape> many(16, MatrixShape{1024, 1024, 1});
  const CpuSchedule s = plan_cpu_schedule(many, 4);
  CHECK(s.alone.empty());
  CHECK(s.side_by_side.size() == 16);
  // Its choice is the cheaper of the two extremes under the model.
  double all_alone = 0;
  for (const auto& m : many) all_alone += modelled_seconds(m, 4);
  CHECK(s.estimated_seconds <= all_alone);

  // Every index exactly once, longest first among those side by side.
  const std::vector<MatrixShape> mixed = {{64, 64, 1}, {2048, 8192, 1}, {512, 512, 1}, {1024, 4096, 1}, {256, 256, 8}};
  const CpuSchedule x = plan_cpu_schedule(mixed, 2);
  std::multiset<size_t> seen(x.alone.begin(), x.alone.end());
  seen.insert(x.side_by_side.begin(), x.side_by_side.end());
  CHECK(seen == std::multiset<size_t>{0, 1, 2, 3, 4});
  for (size_t i = 1; i < x.side_by_side.size(); ++i)
    CHECK(modelled_seconds(mixed[x.side_by_side[i - 1]], 1) >= modelled_seconds(mixed[x.side_by_side[i]], 1));
  // One thread: nothing to gain from running alone.
  CHECK(plan_cpu_schedule(mixed, 1).alone.empty());
}

TEST_CASE("records are bit-identical and in the same order alone, side by side and as the model picks",
          "[scan][scheduler]") {
  TempDir dir("sched");
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{300, 200}, {40, 30}, {200, 450}, {500, 500}, {64, 64},
                                                           {350, 120}};
  for (size_t i = 0; i < shapes.size(); ++i) {
    SynthRng rng(100 + i);
    SpectrumSpec spec;
    spec.kind = SpectrumSpec::Kind::LogSpace;
    spec.a = 1e-3;
    spec.b = 1.0;
    const auto [m, n] = shapes[i];
    const auto sigma = make_spectrum(spec, std::min(m, n), 100 + i);
    write_npy_f32(dir.file("layers." + std::to_string(i) + ".mlp.up_proj.weight.npy"), m, n,
                  make_matrix_with_spectrum(m, n, sigma, rng));
  }
  ScanOptions o;
  o.paths = {dir.path().string()};
  o.device = Device::Cpu;
  o.threads = 2;
  std::vector<std::vector<SpectrumRecord>> results;
  for (const char* mode : {"alone", "side-by-side", static_cast<const char*>(nullptr)}) {
    ScheduleOverride env(mode);
    for (SpectralMethod method : {SpectralMethod::Gram, SpectralMethod::Svd}) {
      o.method = method;
      results.push_back(run_scan(o).records);
    }
  }
  REQUIRE(results[0].size() == shapes.size());
  for (size_t r = 2; r < results.size(); ++r) {
    const auto& ref = results[r % 2];
    REQUIRE(results[r].size() == ref.size());
    for (size_t i = 0; i < ref.size(); ++i) {
      INFO("run " << r << " record " << i << " " << ref[i].name);
      CHECK(results[r][i].file == ref[i].file);
      CHECK(results[r][i].method == ref[i].method);
      REQUIRE(results[r][i].sigma.size() == ref[i].sigma.size());
      CHECK(std::memcmp(results[r][i].sigma.data(), ref[i].sigma.data(), ref[i].sigma.size() * sizeof(double)) == 0);
    }
  }
}

TEST_CASE("a gram32 scan records its method and its float32 floor", "[scan][gram32]") {
  TempDir dir("gram32");
  SynthRng rng(7);
  SpectrumSpec spec;
  spec.kind = SpectrumSpec::Kind::LogSpace;
  spec.a = 1e-4;
  spec.b = 1.0;
  const auto sigma = make_spectrum(spec, 200, 7);
  write_npy_f32(dir.file("layers.0.mlp.up_proj.weight.npy"), 300, 200, make_matrix_with_spectrum(300, 200, sigma, rng));
  ScanOptions o;
  o.paths = {dir.path().string()};
  o.device = Device::Cpu;
  o.method = SpectralMethod::Gram32;
  const auto records = run_scan(o).records;
  REQUIRE(records.size() == 1);
  const SpectrumRecord& r = records[0];
  CHECK(r.method == "gram32");
  CHECK(r.floor == Approx(gram32_floor(r.sigma.back(), 300, 200)).epsilon(1e-12));
  int64_t under = 0;
  for (double s : sigma) under += s < r.floor ? 1 : 0;  // the planted values under the recorded floor
  CHECK(r.summary.below_floor == Approx(under).margin(2));
}
