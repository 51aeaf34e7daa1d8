// Layer-metrics benchmark: the Clauset-Shalizi-Newman xmin scan of fit_power_law (closed-form
// alpha per candidate, KS distance with early exit) against the naive scan of every candidate's
// whole tail (the reference, same run), and compute_layer_metrics with the MP fit, on
// heavy-tailed spectra of 4,096 and 16,384 eigenvalues. See docs/layer-metrics.md.
//
//   muspec_bench_layer_metrics [REPEATS]
//
// Prints one JSON line per size: {"n", "fit_ms", "naive_ms", "speedup", "all_metrics_ms",
// "same_result"} (medians).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <random>
#include <vector>

#include <nlohmann/json.hpp>

#include "spectra/layer_metrics.h"

namespace {

double median_ms(int repeats, const std::function<void()>& fn) {
  std::vector<double> ms;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// The reference: every distinct candidate (same rule), its whole tail, no bound.
double naive_xmin(const std::vector<double>& x) {
  const size_t m = x.size();
  std::vector<size_t> first;
  for (size_t i = 0; i < m; ++i)
    if (i == 0 || x[i] != x[i - 1]) first.push_back(i);
  double best_d = 2.0, best_xmin = 0.0;
  for (size_t c = 0; c + 2 < first.size(); ++c) {
    const size_t i = first[c];
    const double n = static_cast<double>(m - i);
    double logs = 0.0;
    for (size_t j = i; j < m; ++j) logs += std::log(x[j] / x[i]);
    const double alpha = 1.0 + n / logs;
    double d = 0.0;
    for (size_t k = 0; k < m - i; ++k)
      d = std::max(d, std::abs(static_cast<double>(k) / n - (1.0 - std::pow(x[i + k] / x[i], 1.0 - alpha))));
    if (d < best_d) best_d = d, best_xmin = x[i];
  }
  return best_xmin;
}

}  // namespace

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 3;
  for (size_t n : {size_t{4096}, size_t{16384}}) {
    std::mt19937_64 rng(n);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    std::vector<double> lambda;
    for (size_t i = 0; i < n; ++i)
      lambda.push_back(i < n * 3 / 4 ? 0.05 + 0.9 * u(rng) * u(rng) : 0.6 * std::pow(1.0 - u(rng), -1.0 / 1.5));
    std::sort(lambda.begin(), lambda.end());
    std::vector<double> sigma;
    for (double l : lambda) sigma.push_back(std::sqrt(l));
    muspec::PowerLawFit fit;
    double naive = 0.0;
    const double fit_ms = median_ms(repeats, [&] { fit = muspec::fit_power_law(lambda); });
    const double naive_ms = median_ms(repeats, [&] { naive = naive_xmin(lambda); });
    const double all_ms = median_ms(repeats, [&] { muspec::compute_layer_metrics(sigma, 2 * static_cast<int64_t>(n), static_cast<int64_t>(n), 0.0); });
    std::cout << nlohmann::json{{"n", n}, {"fit_ms", fit_ms}, {"naive_ms", naive_ms}, {"speedup", naive_ms / fit_ms},
                                {"all_metrics_ms", all_ms}, {"same_result", naive == fit.xmin}}
                     .dump()
              << std::endl;
  }
}
