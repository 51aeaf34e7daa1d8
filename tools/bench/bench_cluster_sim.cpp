// The scaling model of a scan over MPI ranks (docs/benchmarks.md, "Scans over MPI ranks").
//
//   muspec_bench_cluster_sim measure          # per-matrix seconds on this CPU, one BLAS thread
//   muspec_bench_cluster_sim simulate RATE OVERHEAD [SLACK]
//
// measure: times SpectralBackend::singular_values (gram route, float64, one BLAS thread) on
// random matrices of a few shapes, best of 2, and prints wall and CPU seconds of the calling
// thread (one BLAS thread runs on it; CPU time is what a shared, loaded machine can measure),
// the cost model's units (scan/shard.h matrix_cost) and CPU seconds per unit.
// simulate: the DeepSeek-V3-shaped (~45K matrices) and Llama-3-405B-shaped (882) checkpoints on
// 1..256 ranks, each matrix taking cost × RATE seconds on a rank of speed 1, every batch of the
// dynamic queue paying OVERHEAD seconds of messaging. Prints the makespan over the ideal (all
// work / all speed) for the static partition (--shard, assign_parts) and for the dynamic queue
// (scan/work_queue.h, the code rank 0 runs), with equal ranks, one rank at half speed, and
// speeds drawn from [0.8, 1.2]. The scheduling code is muspec's own; only time is simulated.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <numeric>
#include <queue>
#include <random>
#include <string>
#include <vector>

#include "scan/scan_cluster.h"
#include "scan/shard.h"
#include "scan/work_queue.h"
#include "spectra/backend.h"
#include "spectra/cpu/cpu_backend.h"

using namespace muspec;

namespace {

struct Shape {
  int64_t rows, cols;
};

/// Layer by layer as in the published configs (DeepSeek-V3: 61 layers, MLA projections, 3 dense
/// layers then 256 routed + 1 shared expert of 7168x2048; Llama-3-405B: 126 layers).
std::vector<Shape> deepseek_v3() {
  std::vector<Shape> out;
  for (int l = 0; l < 61; ++l) {
    for (Shape s : {Shape{1536, 7168}, {24576, 1536}, {576, 7168}, {32768, 512}, {7168, 16384}}) out.push_back(s);
    if (l < 3) {
      out.insert(out.end(), {{18432, 7168}, {18432, 7168}, {7168, 18432}});
    } else {
      for (int e = 0; e < 257; ++e) out.insert(out.end(), {{2048, 7168}, {2048, 7168}, {7168, 2048}});
    }
  }
  return out;
}

std::vector<Shape> llama_405b() {
  std::vector<Shape> out;
  for (int l = 0; l < 126; ++l)
    out.insert(out.end(), {{16384, 16384}, {1024, 16384}, {1024, 16384}, {16384, 16384}, {53248, 16384}, {53248, 16384}, {16384, 53248}});
  return out;
}

double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

int measure() {
  set_blas_threads(1);
  auto backend = make_backend(BackendOptions{Device::Cpu, 1});
  std::mt19937 rng(1);
  std::normal_distribution<double> normal;
  std::printf("%-12s %10s %10s %12s %18s\n", "shape", "wall s", "CPU s", "cost", "CPU ns per 1e3 units");
  for (Shape s : {Shape{128, 128}, {256, 256}, {512, 512}, {1024, 1024}, {2048, 512}, {1536, 7168}, {2048, 7168}}) {
    std::vector<double> x(static_cast<size_t>(s.rows * s.cols));
    double best = 1e300, best_cpu = 1e300;
    for (int rep = 0; rep < 2; ++rep) {
      for (double& v : x) v = normal(rng);
      const auto t0 = std::chrono::steady_clock::now();
      const double c0 = thread_cpu_seconds();
      backend->singular_values(x, s.rows, s.cols, SpectralMethod::Gram, "bench");
      best_cpu = std::min(best_cpu, thread_cpu_seconds() - c0);
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    const double cost = matrix_cost(s.rows, s.cols, 1);
    std::printf("%5lldx%-6lld %10.4f %10.4f %12.3e %18.3f\n", static_cast<long long>(s.rows), static_cast<long long>(s.cols), best,
                best_cpu, cost, best_cpu / cost * 1e12);
  }
  return 0;
}

struct Outcome {
  double makespan, ideal, switches;
};

Outcome run_static(const std::vector<double>& costs, const std::vector<double>& speed, double rate) {
  const std::vector<int> part = assign_parts(costs, static_cast<int>(speed.size()));
  std::vector<double> work(speed.size(), 0);
  for (size_t i = 0; i < costs.size(); ++i) work[static_cast<size_t>(part[i])] += costs[i] * rate;
  double makespan = 0;
  for (size_t r = 0; r < speed.size(); ++r) makespan = std::max(makespan, work[r] / speed[r]);
  return {makespan, 0, 0};
}

Outcome run_dynamic(const std::vector<double>& costs, const std::vector<int>& files, const std::vector<double>& speed,
                    double rate, double overhead, double slack) {
  std::vector<size_t> todo(costs.size());
  std::iota(todo.begin(), todo.end(), size_t{0});
  WorkQueue q(costs, files, todo, slack);
  using Free = std::pair<double, int>;  // (time the rank asks, rank)
  std::priority_queue<Free, std::vector<Free>, std::greater<Free>> ready;
  for (int r = 0; r < static_cast<int>(speed.size()); ++r) ready.push({0.0, r});
  std::vector<int> last_file(speed.size(), -1);
  double switches = 0, makespan = 0;
  while (!ready.empty()) {
    auto [t, r] = ready.top();
    ready.pop();
    const std::vector<size_t> batch = q.take(r, 1, kMinBatchCost);
    if (batch.empty()) {
      makespan = std::max(makespan, t);
      continue;
    }
    double work = 0;
    for (size_t i : batch) {
      work += costs[i] * rate;
      if (files[i] != last_file[static_cast<size_t>(r)]) ++switches, last_file[static_cast<size_t>(r)] = files[i];
    }
    ready.push({t + overhead + work / speed[static_cast<size_t>(r)], r});
  }
  return {makespan, 0, switches / static_cast<double>(speed.size())};
}

int simulate(double rate, double overhead, double slack) {
  for (auto [name, shapes, file_count] : {std::tuple{"DeepSeek-V3-shaped", deepseek_v3(), 163}, {"Llama-3-405B-shaped", llama_405b(), 191}}) {
    std::vector<double> costs;
    std::vector<int> files;
    for (size_t i = 0; i < shapes.size(); ++i) {
      costs.push_back(matrix_cost(shapes[i].rows, shapes[i].cols, 1));
      files.push_back(static_cast<int>(i * static_cast<size_t>(file_count) / shapes.size()));  // checkpoint shards in layer order
    }
    const double total = std::accumulate(costs.begin(), costs.end(), 0.0) * rate;
    std::printf("%s: %zu matrices in %d files, %.1f core-hours at this CPU's rate\n", name, costs.size(), file_count, total / 3600);
    std::printf("  ranks | equal: static dynamic | one at half speed: static dynamic | speeds 0.8-1.2: static dynamic | file switches per rank (equal, dynamic) | hours (equal, dynamic)\n");
    std::mt19937 rng(7);
    for (int ranks : {1, 2, 4, 8, 16, 32, 64, 128, 256}) {
      std::printf("  %5d |", ranks);
      std::vector<double> switches;
      double hours = 0;
      for (int scenario = 0; scenario < 3; ++scenario) {
        std::vector<double> speed(static_cast<size_t>(ranks), 1.0);
        if (scenario == 1) speed.back() = ranks > 1 ? 0.5 : 1.0;
        if (scenario == 2)
          for (double& s : speed) s = 0.8 + 0.4 * std::uniform_real_distribution<double>()(rng);
        const double ideal = total / std::accumulate(speed.begin(), speed.end(), 0.0);
        const Outcome st = run_static(costs, speed, rate), dy = run_dynamic(costs, files, speed, rate, overhead, slack);
        std::printf(" %.4f %.4f |", st.makespan / ideal, dy.makespan / ideal);
        if (scenario == 0) switches.push_back(dy.switches), hours = dy.makespan / 3600;
      }
      std::printf(" %.1f | %.3f\n", switches[0], hours);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string what = argc > 1 ? argv[1] : "";
  if (what == "measure") return measure();
  if (what == "simulate" && argc >= 4) return simulate(std::atof(argv[2]), std::atof(argv[3]), argc > 4 ? std::atof(argv[4]) : 0.5);
  std::fprintf(stderr, "usage: muspec_bench_cluster_sim measure | simulate RATE_SECONDS_PER_UNIT OVERHEAD_SECONDS [SLACK]\n");
  return 2;
}
