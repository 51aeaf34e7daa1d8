// How a CPU scan spreads its matrices over the cores: some one at a time with every BLAS thread
// ("alone"), the rest side by side, one matrix and one BLAS thread per core. Chosen by a cost
// model measured on the CPU backend (docs/spectral-methods.md, "Scan scheduling"), not by a
// fixed size cut-off.
//
// Records do not depend on the choice: the CPU backend runs the eigenvalue stage on one BLAS
// thread whatever the caller's thread count, and OpenBLAS's dsyrk gives the same bits on any
// number of threads, so a matrix's values are bit-identical alone or side by side
// (tests/test_scan_scheduler.cpp checks it end to end).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace muspec {

struct MatrixShape {
  int64_t rows = 0, cols = 0, slices = 1;
};

struct CpuSchedule {
  std::vector<size_t> alone;         ///< run first, one at a time with all BLAS threads
  std::vector<size_t> side_by_side;  ///< then in this order on `workers` threads, one BLAS thread each
  int workers = 1;
  double estimated_seconds = 0;      ///< the model's makespan (relative units: for comparisons)
};

/// Model seconds of one matrix with `threads` BLAS threads (decode + Gram + eigenvalues).
double modelled_seconds(const MatrixShape& s, int threads);

/// The schedule with the smallest modelled makespan among: the c most expensive matrices alone
/// (c = 0 .. all), the rest side by side, longest first. MUSPEC_SCAN_SCHEDULE=alone or
/// side-by-side forces one extreme (tests and benchmarks).
CpuSchedule plan_cpu_schedule(const std::vector<MatrixShape>& shapes, int threads);

/// Runs the schedule; run_one(i) analyses matrix i. Leaves OpenBLAS at `threads` threads.
void run_cpu_schedule(const CpuSchedule& schedule, int threads, const std::function<void(size_t)>& run_one);

}  // namespace muspec
