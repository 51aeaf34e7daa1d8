#include "scan/scan_scheduler.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <queue>

#include "core/memory_budget.h"
#include "core/parallel.h"
#include "spectra/cpu/cpu_backend.h"

namespace muspec {

namespace {
// Rates measured on one core of the development VM with muspec_bench_cpu_routes (float64,
// OpenBLAS 0.3.21; docs/spectral-methods.md, "Scan scheduling"). Only their ratios matter.
constexpr double kDecodeElementsPerSecond = 2.5e8;  // stored -> float64, page faults included
constexpr double kSyrkFlopsPerSecond = 3.5e10;      // dsyrk, k^2 * inner flops
constexpr double kEigenFlopsPerSecond = 1.5e10;     // dsyevd(_2stage) values, 4/3 k^3 flops
constexpr double kSyrkThreadEfficiency = 0.85;      // dsyrk speed-up per added thread
constexpr size_t kMaxAloneCandidates = 64;

double makespan_side_by_side(const std::vector<double>& costs, int workers) {
  // Longest first onto the least-loaded worker: what parallel_for does with indices claimed
  // in decreasing cost order.
  std::priority_queue<double, std::vector<double>, std::greater<double>> load;
  for (int w = 0; w < workers; ++w) load.push(0.0);
  for (double c : costs) {
    const double least = load.top();
    load.pop();
    load.push(least + c);
  }
  double most = 0;
  while (!load.empty()) most = load.top(), load.pop();
  return most;
}
}  // namespace

double modelled_seconds(const MatrixShape& s, int threads) {
  const double m = static_cast<double>(std::max(s.rows, s.cols)), k = static_cast<double>(std::min(s.rows, s.cols));
  const double syrk_speedup = 1.0 + kSyrkThreadEfficiency * (std::max(1, threads) - 1);
  const double one = m * k / kDecodeElementsPerSecond + k * k * m / kSyrkFlopsPerSecond / syrk_speedup +
                     4.0 / 3.0 * k * k * k / kEigenFlopsPerSecond;
  return one * static_cast<double>(std::max<int64_t>(1, s.slices));
}

CpuSchedule plan_cpu_schedule(const std::vector<MatrixShape>& shapes, int threads) {
  threads = std::max(1, threads);
  std::vector<size_t> order(shapes.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::vector<double> one(shapes.size());
  for (size_t i = 0; i < shapes.size(); ++i) one[i] = modelled_seconds(shapes[i], 1);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return one[a] > one[b]; });

  const char* forced = std::getenv("MUSPEC_SCAN_SCHEDULE");
  size_t best_cut = 0;
  double best = -1;
  if (forced && std::strcmp(forced, "alone") == 0) best_cut = order.size();
  else if (!(forced && std::strcmp(forced, "side-by-side") == 0)) {
    double alone = 0;
    for (size_t cut = 0; cut <= std::min(order.size(), kMaxAloneCandidates); ++cut) {
      if (cut > 0) alone += modelled_seconds(shapes[order[cut - 1]], threads);
      std::vector<double> rest;
      for (size_t i = cut; i < order.size(); ++i) rest.push_back(one[order[i]]);
      const double total = alone + makespan_side_by_side(rest, threads);
      // Ties (one thread: every split costs the same) keep more side by side.
      if (best < 0 || total < best * (1 - 1e-9)) best = total, best_cut = cut;
    }
    if (order.size() > kMaxAloneCandidates && best_cut == kMaxAloneCandidates) best_cut = order.size();
  }
  // Side by side, `threads` matrices are in memory at once: move the largest to "alone" until
  // the biggest `threads` of the rest fit in half of the memory budget (the other half is
  // for the mapped files and everything else).
  const auto footprint = [&](size_t i) {
    const double k = static_cast<double>(std::min(shapes[i].rows, shapes[i].cols));
    return 8.0 * (static_cast<double>(shapes[i].rows) * static_cast<double>(shapes[i].cols) + k * k);
  };
  const double room = 0.5 * static_cast<double>(memory_budget());
  while (best_cut < order.size()) {
    double together = 0;  // order is by cost, which grows with size: the next `threads` are about the largest
    for (size_t i = best_cut; i < order.size() && i < best_cut + static_cast<size_t>(threads); ++i)
      together += footprint(order[i]);
    if (together <= room || threads == 1) break;
    ++best_cut;
  }
  CpuSchedule s;
  s.workers = threads;
  s.alone.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(best_cut));
  s.side_by_side.assign(order.begin() + static_cast<std::ptrdiff_t>(best_cut), order.end());
  s.estimated_seconds = best;
  return s;
}

void run_cpu_schedule(const CpuSchedule& schedule, int threads, const std::function<void(size_t)>& run_one) {
  set_blas_threads(threads);
  for (size_t i : schedule.alone) run_one(i);
  set_blas_threads(1);
  parallel_for(schedule.side_by_side.size(), schedule.workers,
               [&](size_t k) { run_one(schedule.side_by_side[k]); });
  set_blas_threads(threads);
}

}  // namespace muspec
