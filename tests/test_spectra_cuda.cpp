// The CUDA backend against the CPU backend and against exactly known spectra: the same
// singular values within the floor, for every stored dtype, shapes from 64x64 up, wide and
// tall, condition numbers up to 1e10; the GPU NS iteration against the float64 scalar map.
//
// Tagged [cuda]. Without a GPU (or in a build without CUDA) each case says so and checks that
// --device cuda is refused with a clear error instead.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <thread>

#ifdef MUSPEC_CUDA_PLUGIN_FILE
#include <dlfcn.h>

#include "spectra/cuda_entry.h"
#endif

#include "core/dtype.h"
#include "core/error.h"
#include "ns/catalog.h"
#include "ns/simulate.h"
#include "spectra/backend.h"
#include "cuda_cases.h"

using namespace muspec;
using namespace muspec::test;

namespace {
bool mapped(const std::string& library) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line))
    if (line.find(library) != std::string::npos) return true;
  return false;
}
}  // namespace

TEST_CASE("the CUDA backend is loaded only when a GPU is there", "[spectra]") {
  std::string notice;
  auto backend = make_backend(BackendOptions{Device::Auto}, &notice);
  if (cuda_device_count() == 0) {
    // A CPU-only run never maps cuBLAS or cuSOLVER (they cost ~190 MB resident at load).
    CHECK(backend->device() == Device::Cpu);
    CHECK_THAT(notice, Catch::StartsWith("using the CPU backend: "));
    CHECK_FALSE(mapped("libcublas"));
    CHECK_FALSE(mapped("libcusolver"));
    CHECK_FALSE(mapped("libmuspec_cuda"));
  } else {
    CHECK(backend->device() == Device::Cuda);
  }
#ifdef MUSPEC_CUDA_PLUGIN_FILE
  // The plugin itself loads with every symbol resolved and hands out the current entry table,
  // so a broken link is found here rather than on the first GPU machine.
  if (!std::ifstream(MUSPEC_CUDA_PLUGIN_FILE)) {
    WARN("the plugin is not at its build path (a relocated test binary): direct load skipped");
    return;
  }
  void* h = dlopen(MUSPEC_CUDA_PLUGIN_FILE, RTLD_NOW | RTLD_LOCAL);
  INFO((h ? "" : dlerror()));
  REQUIRE(h != nullptr);
  using EntryFn = const CudaPlugin* (*)();
  auto entry = reinterpret_cast<EntryFn>(dlsym(h, kCudaPluginSymbol));
  REQUIRE(entry != nullptr);
  const CudaPlugin* plugin = entry();
  REQUIRE(plugin != nullptr);
  CHECK(plugin->abi == kCudaPluginAbi);
  CHECK(plugin->devices_present() == cuda_device_count());
  std::string why;
  if (cuda_device_count() == 0) CHECK(plugin->try_make_backend(BackendOptions{Device::Cuda}, &why) == nullptr);
  // Nothing but the entry table is exported.
  CHECK(dlsym(h, "_ZN6muspec4cuda15devices_presentEv") == nullptr);
#endif
}

TEST_CASE("CUDA gram and svd agree with the CPU backend within the floor", "[spectra][cuda]") {
  if (!have_gpu()) return;
  auto gpu = make_backend(BackendOptions{Device::Cuda});
  auto cpu = make_backend(BackendOptions{Device::Cpu});
  REQUIRE(gpu->device() == Device::Cuda);
  struct Shape { int64_t m, n; double lo; DType dtype; };
  const Shape shapes[] = {{64, 64, 1e-3, DType::F32},     {96, 257, 1e-6, DType::BF16},  {300, 128, 1e-4, DType::F16},
                          {512, 512, 1e-10, DType::F32},  {1024, 384, 1e-8, DType::F64}, {768, 2048, 1e-2, DType::BF16},
                          {2048, 2048, 1e-5, DType::F32}};
  uint64_t seed = 11;
  for (const Shape& s : shapes) {
    const Case c = make_case(s.m, s.n, s.lo, s.dtype, seed++);
    INFO(s.m << "x" << s.n << " " << dtype_name(s.dtype) << " sigma_min " << s.lo);
    std::vector<double> work = c.x;
    const SingularValues ref = cpu->singular_values(work, s.m, s.n, SpectralMethod::Svd, "cpu svd");
    for (SpectralMethod method : {SpectralMethod::Gram, SpectralMethod::Svd, SpectralMethod::Auto}) {
      work = c.x;
      const SingularValues got = gpu->singular_values(work, s.m, s.n, method, "gpu");
      INFO("method " << method_name(method) << " used " << method_name(got.method));
      CHECK(got.device == Device::Cuda);
      // Both backends promise 1% above their floor; their agreement is far tighter, and the
      // float64 CPU SVD itself is exact to ~1e-12 relative well above its floor.
      const double floor = std::max(got.floor, ref.floor);
      CHECK(worst_relative_difference(got.sigma, ref.sigma, floor) < kFloorRelativeAccuracy);
      CHECK(worst_relative_difference(got.sigma, ref.sigma, std::max(floor, 1e-3 * ref.sigma.back())) < 1e-6);
      if (method == SpectralMethod::Auto && s.lo >= 1e-4) CHECK(got.method == SpectralMethod::Gram);
      // Only float64 storage keeps sigma_min = 1e-8 (rounding to a narrower type lifts it).
      if (method == SpectralMethod::Auto && s.dtype == DType::F64 && s.lo <= 1e-8) CHECK(got.method == SpectralMethod::Svd);
    }
    // Against the truth: Weyl bounds what rounding to the stored dtype can move.
    work = c.x;
    const SingularValues got = gpu->singular_values(work, s.m, s.n, SpectralMethod::Svd, "gpu");
    for (size_t i = 0; i < c.sigma.size(); ++i)
      CHECK(std::fabs(got.sigma[i] - c.sigma[i]) <= c.rounding_bound + 1e-12 + got.floor * kFloorRelativeAccuracy);
  }
}

TEST_CASE("CUDA backend: degenerate matrices and many concurrent callers", "[spectra][cuda]") {
  if (!have_gpu()) return;
  auto gpu = make_backend(BackendOptions{Device::Cuda, 0, 3});
  REQUIRE(gpu->preferred_concurrency() == 3);
  // A rank-1 matrix: one non-zero singular value (sqrt(m n) for all ones), the rest ~0.
  std::vector<double> ones(200 * 50, 1.0);
  const SingularValues r = gpu->singular_values(ones, 200, 50, SpectralMethod::Svd, "ones");
  CHECK(r.sigma.back() == Approx(std::sqrt(200.0 * 50.0)).epsilon(1e-12));
  CHECK(r.sigma[r.sigma.size() - 2] < 1e-10);
  // 1 x n and n x 1
  std::vector<double> row = {3.0, 4.0};
  CHECK(gpu->singular_values(row, 1, 2, SpectralMethod::Gram, "row").sigma.at(0) == Approx(5.0));
  std::vector<double> col = {3.0, 4.0};
  CHECK(gpu->singular_values(col, 2, 1, SpectralMethod::Svd, "col").sigma.at(0) == Approx(5.0));
  // Concurrent calls from several threads borrow separate contexts and stay correct.
  std::vector<Case> cases;
  for (int i = 0; i < 8; ++i) cases.push_back(make_case(256 + 32 * i, 384, 1e-3, DType::F32, 100 + i));
  std::vector<double> worst(cases.size(), 1.0);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < cases.size(); ++i)
    threads.emplace_back([&, i] {
      std::vector<double> w = cases[i].x;
      const SingularValues sv = gpu->singular_values(w, 256 + 32 * static_cast<int64_t>(i), 384, SpectralMethod::Gram, "t");
      worst[i] = worst_relative_difference(sv.sigma, cases[i].sigma, 1e-2);
    });
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < cases.size(); ++i) CHECK(worst[i] < 1e-4);  // f32 rounding of the matrix dominates
}

TEST_CASE("CUDA backend: gram32 runs on the CPU backend and the record says so", "[spectra][cuda]") {
  if (!have_gpu()) return;
  auto gpu = make_backend(BackendOptions{Device::Cuda});
  auto cpu = make_backend(BackendOptions{Device::Cpu});
  const Case c = make_case(300, 700, 1e-2, DType::F32, 41);
  std::vector<double> a = c.x, b = c.x;
  const SingularValues g = gpu->singular_values(a, 300, 700, SpectralMethod::Gram32, "gpu gram32");
  const SingularValues r = cpu->singular_values(b, 300, 700, SpectralMethod::Gram32, "cpu gram32");
  CHECK(g.device == Device::Cpu);
  CHECK(g.method == SpectralMethod::Gram32);
  CHECK(g.sigma == r.sigma);  // the same CPU computation, bit for bit
  CHECK(g.floor == r.floor);
  // And it is right: every value above gram32's floor within 1% of the planted spectrum.
  CHECK(worst_relative_difference(g.sigma, c.sigma, g.floor) < kFloorRelativeAccuracy);
  // The next call on the same thread is back on the GPU.
  a = c.x;
  CHECK(gpu->singular_values(a, 300, 700, SpectralMethod::Gram, "gpu gram").device == Device::Cuda);
}

TEST_CASE("GPU Newton-Schulz follows the float64 scalar map", "[ns][cuda]") {
  if (!have_gpu()) {
    std::vector<double> g(16, 1.0);
    CHECK_THROWS_AS(ns::newton_schulz_on(Device::Cuda, ns::builtin_schedule("keller"), 5, ns::Precision::F32, g.data(), 4, 4),
                    NotAvailableError);
    return;
  }
  auto cpu = make_backend(BackendOptions{Device::Cpu});
  const Case c = make_case(384, 640, 1e-3, DType::F32, 7);
  for (const char* name : {"keller", "polar-express", "cubic"}) {
    const ns::Schedule s = ns::builtin_schedule(name);
    const int k = s.resolve_steps(std::nullopt);
    INFO(name);
    const ns::Agreement f64 = ns::simulate_matrix(s, k, ns::Precision::F64, c.x.data(), 384, 640, *cpu, name, Device::Cuda);
    CHECK(f64.max_abs_error < 1e-11);
    const ns::Agreement f32 = ns::simulate_matrix(s, k, ns::Precision::F32, c.x.data(), 384, 640, *cpu, name, Device::Cuda);
    CHECK(f32.max_abs_error < 1e-4);
    const ns::Agreement bf16 = ns::simulate_matrix(s, k, ns::Precision::BF16, c.x.data(), 384, 640, *cpu, name, Device::Cuda);
    CHECK(bf16.max_abs_error < 0.08);
    CHECK(bf16.max_abs_error > f32.max_abs_error);  // bf16 storage really was used
    // Tall input (transposed inside) gives the transpose of the wide result.
    std::vector<double> t(c.x.size());
    for (int64_t i = 0; i < 384; ++i)
      for (int64_t j = 0; j < 640; ++j) t[j * 384 + i] = c.x[i * 640 + j];
    const std::vector<double> wide = ns::newton_schulz_on(Device::Cuda, s, k, ns::Precision::F64, c.x.data(), 384, 640);
    const std::vector<double> tall = ns::newton_schulz_on(Device::Cuda, s, k, ns::Precision::F64, t.data(), 640, 384);
    double diff = 0;
    for (int64_t i = 0; i < 384; ++i)
      for (int64_t j = 0; j < 640; ++j) diff = std::max(diff, std::fabs(wide[i * 640 + j] - tall[j * 384 + i]));
    CHECK(diff < 1e-12);
  }
}
