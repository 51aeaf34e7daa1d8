// The dynamic work queue of a scan over MPI ranks (scan/scan_cluster.h): rank 0 hands out
// matrices on request, longest first by the cost model (scan/shard.h matrix_cost), so a slow
// rank never holds the rest up: it simply asks less often. Among the matrices that are about as
// long as the longest left (within `file_slack`), a rank gets one from the file it last read,
// so it keeps reading the same shard file (page cache, one open mapping) where that costs the
// makespan nothing. Pure bookkeeping: no MPI, unit-tested (tests/test_scan_cluster.cpp) and
// used by the scheduler simulation (tools/bench/bench_cluster_sim.cpp).
#pragma once

#include <cstddef>
#include <set>
#include <utility>
#include <vector>

namespace muspec {

class WorkQueue {
 public:
  /// `costs` and `files` (a file id per matrix) describe every matrix of the scan; `todo`
  /// lists those left to compute. `file_slack` in (0, 1]: a matrix from the rank's current file
  /// is preferred when its cost is at least file_slack × the longest left (1: ties only).
  WorkQueue(std::vector<double> costs, std::vector<int> files, const std::vector<size_t>& todo, double file_slack = 0.5);

  /// The next batch for `rank`: at least one matrix (if any is left), up to `max_count`, and
  /// more than one only while the batch's cost is under `min_cost` or it has fewer than
  /// `slots` matrices (one per worker thread of that rank). Empty when the queue is empty.
  std::vector<size_t> take(int rank, size_t slots, double min_cost = 0, size_t max_count = 256);

  size_t left() const { return by_cost_.size(); }
  bool empty() const { return by_cost_.empty(); }

 private:
  using Key = std::pair<double, size_t>;  // (-cost, matrix): the longest first, then file order
  size_t take_one(int rank);
  std::vector<double> costs_;
  std::vector<int> files_;
  double slack_;
  std::set<Key> by_cost_;
  std::vector<std::set<Key>> by_file_;  // indexed by file id
  std::vector<int> rank_file_;          // the file each rank last read (-1: none yet)
};

}  // namespace muspec
