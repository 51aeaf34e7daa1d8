// NS calculus benchmark: design time of a 10-step degree-5 schedule, and the scalar map /
// spectrum evaluation on 10⁶ singular values (targets of issue 4: < 10 ms and < 20 ms).
//
//   muspec_bench_ns [REPEATS]
//
// Prints one JSON line per measurement: {"what", "median_ms", "min_ms", "repeats"}.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ns/catalog.h"
#include "ns/design.h"
#include "ns/quality.h"
#include "ns/scalar_map.h"

using namespace muspec::ns;

namespace {

volatile double g_sink = 0.0;  // keeps results alive

void time_it(const std::string& what, int repeats, const std::function<double()>& fn) {
  std::vector<double> ms;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    g_sink = g_sink + fn();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  std::cout << nlohmann::json{{"what", what}, {"median_ms", ms[ms.size() / 2]}, {"min_ms", ms.front()},
                              {"repeats", repeats}}
                   .dump()
            << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 50;

  DesignOptions o;
  o.lower = 1e-3;
  o.steps = 10;
  o.degree = 5;
  time_it("design 10-step degree-5 schedule (l=1e-3)", repeats, [&] { return design_schedule(o).worst_error; });
  o.lower = 1e-9;
  o.steps = 30;
  time_it("design 30-step degree-5 schedule (l=1e-9)", repeats, [&] { return design_schedule(o).worst_error; });

  // 10⁶ normalized singular values, log-uniform over six decades.
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<double> s(1000000), out(s.size());
  for (double& v : s) v = std::pow(10.0, -6.0 * u(rng));
  for (const char* name : {"keller", "polar-express", "deepseek-v4"}) {
    const Schedule sch = builtin_schedule(name);
    const int k = sch.resolve_steps(std::nullopt);
    time_it(std::string("scalar map, 1e6 values, ") + name + " x" + std::to_string(k), repeats, [&] {
      map_values(sch, k, s.data(), out.data(), s.size());
      return out[12345];
    });
    time_it(std::string("evaluate_spectrum (fractions, range), 1e6 values, ") + name + " x" + std::to_string(k),
            repeats, [&] { return evaluate_spectrum(sch, k, s, sch.target_band()).band_fraction; });
  }
  const Schedule kj = builtin_schedule("keller");
  time_it("threshold + coverage, keller x5", repeats, [&] {
    return *threshold(kj, 5, kj.target_band()) + *coverage_lower(kj, 5, kj.target_band());
  });
  return 0;
}
