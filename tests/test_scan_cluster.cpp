// The pieces of a scan over MPI ranks that need no MPI: the dynamic work queue
// (scan/work_queue.h), the GPU each local rank uses (spectra/gpu_choice.h) and what the
// launcher's environment says (scan/mpi_scan.h launch_from_env). End to end over mpirun:
// tests/test_scan_mpi.cpp.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>

#include "core/error.h"
#include "scan/mpi_scan.h"
#include "scan/work_queue.h"
#include "spectra/gpu_choice.h"

using muspec::WorkQueue;

TEST_CASE("work queue: longest first, a rank keeps its file among equal costs", "[cluster]") {
  // costs 5 5 3 5 1 in files 0 1 0 0 1. By hand: rank 0 takes the longest (0, file 0), then
  // the equally long 3 from the same file rather than 1; then 1 (the longest left); then 2
  // (file 1 has only the short 4 left, under the slack), then 4.
  WorkQueue q({5, 5, 3, 5, 1}, {0, 1, 0, 0, 1}, {0, 1, 2, 3, 4}, 1.0);
  std::vector<size_t> order;
  while (!q.empty()) order.push_back(q.take(0, 1).at(0));
  CHECK(order == std::vector<size_t>{0, 3, 1, 2, 4});
  CHECK(q.take(0, 1).empty());
}

TEST_CASE("work queue: without a file preference it is std::sort by decreasing cost", "[cluster]") {
  std::mt19937 rng(3);
  std::vector<double> costs(200);
  for (double& c : costs) c = static_cast<double>(rng() % 50);  // many ties
  std::vector<size_t> todo(costs.size());
  std::iota(todo.begin(), todo.end(), size_t{0});
  WorkQueue q(costs, std::vector<int>(costs.size(), 0), todo, 1.0);  // one file: no preference to apply
  std::vector<size_t> expected = todo;
  std::stable_sort(expected.begin(), expected.end(), [&](size_t a, size_t b) { return costs[a] > costs[b]; });
  std::vector<size_t> got;
  for (int rank = 0; !q.empty(); rank = (rank + 1) % 3)
    for (size_t i : q.take(rank, 1)) got.push_back(i);
  CHECK(got == expected);
}

TEST_CASE("work queue: every matrix to do is handed out once, whatever the requests", "[cluster]") {
  std::mt19937 rng(11);
  for (int round = 0; round < 20; ++round) {
    const size_t n = 1 + rng() % 300;
    std::vector<double> costs(n);
    std::vector<int> files(n);
    std::vector<size_t> todo;
    for (size_t i = 0; i < n; ++i) {
      costs[i] = std::ldexp(1.0, static_cast<int>(rng() % 30));
      files[i] = static_cast<int>(rng() % 7);
      if (rng() % 4) todo.push_back(i);  // the rest were in a journal
    }
    WorkQueue q(costs, files, todo, 0.5);
    std::vector<int> seen(n, 0);
    size_t taken = 0;
    while (!q.empty()) {
      const size_t slots = 1 + rng() % 4;
      const double min_cost = (rng() % 2) ? 0.0 : std::ldexp(1.0, 25);
      const auto batch = q.take(static_cast<int>(rng() % 5), slots, min_cost, 16);
      REQUIRE(!batch.empty());
      REQUIRE(batch.size() <= 16);
      double cost = 0;
      for (size_t k = 0; k + 1 < batch.size(); ++k) cost += costs[batch[k]];
      if (batch.size() > slots) CHECK(cost < min_cost);  // grown past the slots only while under min_cost
      for (size_t i : batch) ++seen[i], ++taken;
    }
    CHECK(taken == todo.size());
    for (size_t i = 0; i < n; ++i) CHECK(seen[i] == (std::find(todo.begin(), todo.end(), i) != todo.end() ? 1 : 0));
  }
}

TEST_CASE("work queue: with slack, a rank stays in its file unless that costs over the slack", "[cluster]") {
  // File 0: costs 10 and 6; file 1: cost 9. After taking 10 (file 0), the longest left is 9
  // (file 1); 6 >= 0.5 * 9, so rank 0 stays in file 0. With slack 0.7 it would not (6 < 6.3).
  WorkQueue loose({10, 6, 9}, {0, 0, 1}, {0, 1, 2}, 0.5);
  CHECK(loose.take(0, 1) == std::vector<size_t>{0});
  CHECK(loose.take(0, 1) == std::vector<size_t>{1});
  WorkQueue tight({10, 6, 9}, {0, 0, 1}, {0, 1, 2}, 0.7);
  CHECK(tight.take(0, 1) == std::vector<size_t>{0});
  CHECK(tight.take(0, 1) == std::vector<size_t>{2});
  // Another rank has no file yet: it gets the longest.
  WorkQueue other({10, 6, 9}, {0, 0, 1}, {0, 1, 2}, 0.5);
  CHECK(other.take(0, 1) == std::vector<size_t>{0});
  CHECK(other.take(1, 1) == std::vector<size_t>{2});
}

TEST_CASE("work queue: a matrix outside the scan is refused", "[cluster]") {
  CHECK_THROWS_AS(WorkQueue({1, 2}, {0, 0}, {2}), muspec::Error);
  CHECK_THROWS_AS(WorkQueue({1, 2}, {0}, {0}), muspec::Error);
}

TEST_CASE("gpu choice: one GPU per local rank, round robin over the visible devices", "[cluster][cuda]") {
  using muspec::gpu_for_local_rank;
  CHECK(gpu_for_local_rank(0, 4) == 0);
  CHECK(gpu_for_local_rank(3, 4) == 3);
  CHECK(gpu_for_local_rank(5, 4) == 1);  // 8 ranks on a 4-GPU node: two per GPU
  CHECK(gpu_for_local_rank(2, 1) == 0);  // srun --gpus-per-task=1: each task sees its own GPU as 0
  CHECK(gpu_for_local_rank(-1, 2) == 0);  // not one of several
  CHECK(gpu_for_local_rank(1, 0) == -1);  // no GPU
  using muspec::visible_gpu_name;
  CHECK(visible_gpu_name(1, nullptr) == "1");
  CHECK(visible_gpu_name(1, "") == "1");
  CHECK(visible_gpu_name(1, "2,3") == "3 (CUDA_VISIBLE_DEVICES)");
  CHECK(visible_gpu_name(0, "GPU-8f2a,GPU-11bc") == "GPU-8f2a (CUDA_VISIBLE_DEVICES)");
  CHECK(visible_gpu_name(0, "5") == "5 (CUDA_VISIBLE_DEVICES)");
  CHECK(visible_gpu_name(4, "2,3") == "4");  // not in the list: the runtime's index
}

namespace {
muspec::LaunchInfo launch(const std::map<std::string, std::string>& vars) {
  return muspec::launch_from_env([&](const char* name) -> const char* {
    const auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}
}  // namespace

TEST_CASE("launcher: Open MPI, MPICH/PMI, srun with PMIx, plain srun, none", "[cluster]") {
  // Variable names and meanings from the Open MPI mpirun(1), MPICH Hydra and Slurm srun(1) manuals.
  auto l = launch({{"OMPI_COMM_WORLD_SIZE", "8"}, {"OMPI_COMM_WORLD_RANK", "5"}, {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                   {"SLURM_LOCALID", "3"}});
  CHECK(l.launcher == "Open MPI");
  CHECK(l.world_size == 8);
  CHECK(l.rank == 5);
  CHECK(l.local_rank == 1);  // Open MPI's own, not Slurm's
  l = launch({{"PMI_SIZE", "4"}, {"PMI_RANK", "2"}, {"MPI_LOCALRANKID", "0"}});
  CHECK((l.launcher == "PMI" && l.world_size == 4 && l.rank == 2 && l.local_rank == 0));
  l = launch({{"PMI_SIZE", "16"}, {"PMI_RANK", "9"}, {"SLURM_LOCALID", "1"}, {"SLURM_PROCID", "9"}});  // srun --mpi=pmi2
  CHECK((l.world_size == 16 && l.rank == 9 && l.local_rank == 1));
  l = launch({{"PMIX_RANK", "7"}, {"SLURM_NTASKS", "32"}, {"SLURM_LOCALID", "3"}, {"SLURM_PROCID", "7"}});
  CHECK((l.launcher == "srun (PMIx)" && l.world_size == 32 && l.rank == 7 && l.local_rank == 3));
  // A plain srun: tasks of one step, no MPI; each its own scan, its GPU by SLURM_LOCALID.
  l = launch({{"SLURM_PROCID", "6"}, {"SLURM_LOCALID", "2"}, {"SLURM_STEP_NUM_TASKS", "8"}, {"SLURM_NTASKS", "8"}});
  CHECK((l.launcher == "srun" && l.world_size == 1 && l.rank == 0 && l.local_rank == 2 && l.tasks == 8 && l.task == 6));
  // A batch script's shell (SLURM_NTASKS and SLURM_PROCID but no step): not a launch.
  l = launch({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "0"}});
  CHECK((l.launcher.empty() && l.world_size == 1 && l.local_rank == -1));
  // PMIX_RANK alone (mpirun of a PMIx-based MPI without Slurm sets its own size variables).
  CHECK(launch({{"PMIX_RANK", "1"}}).world_size == 1);
  CHECK(launch({}).world_size == 1);
  // Not numbers: ignored.
  CHECK(launch({{"OMPI_COMM_WORLD_SIZE", "2x"}}).world_size == 1);
  CHECK(launch({{"OMPI_COMM_WORLD_SIZE", "-3"}}).world_size == 1);
  l = launch({{"OMPI_COMM_WORLD_SIZE", "2"}, {"OMPI_COMM_WORLD_RANK", "one"}});
  CHECK((l.world_size == 2 && l.rank == 0 && l.local_rank == -1));
}
