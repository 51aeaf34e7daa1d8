#include "scan/work_queue.h"

#include <algorithm>

#include "core/error.h"

namespace muspec {

WorkQueue::WorkQueue(std::vector<double> costs, std::vector<int> files, const std::vector<size_t>& todo, double file_slack)
    : costs_(std::move(costs)), files_(std::move(files)), slack_(std::clamp(file_slack, 1e-9, 1.0)) {
  if (files_.size() != costs_.size()) throw Error("WorkQueue: one file id per matrix expected");
  int most = -1;
  for (int f : files_) most = std::max(most, f);
  by_file_.resize(static_cast<size_t>(most + 1));
  for (size_t i : todo) {
    if (i >= costs_.size() || files_[i] < 0) throw Error("WorkQueue: matrix " + std::to_string(i) + " is not in the scan");
    const Key k{-costs_[i], i};
    by_cost_.insert(k);
    by_file_[static_cast<size_t>(files_[i])].insert(k);
  }
}

size_t WorkQueue::take_one(int rank) {
  if (rank >= static_cast<int>(rank_file_.size())) rank_file_.resize(static_cast<size_t>(rank) + 1, -1);
  Key pick = *by_cost_.begin();
  const int current = rank_file_[static_cast<size_t>(rank)];
  if (current >= 0 && !by_file_[static_cast<size_t>(current)].empty()) {
    const Key same_file = *by_file_[static_cast<size_t>(current)].begin();
    if (-same_file.first >= slack_ * -pick.first) pick = same_file;
  }
  by_cost_.erase(pick);
  by_file_[static_cast<size_t>(files_[pick.second])].erase(pick);
  rank_file_[static_cast<size_t>(rank)] = files_[pick.second];
  return pick.second;
}

std::vector<size_t> WorkQueue::take(int rank, size_t slots, double min_cost, size_t max_count) {
  std::vector<size_t> batch;
  double cost = 0;
  while (!by_cost_.empty() && batch.size() < std::max<size_t>(1, max_count) &&
         (batch.size() < std::max<size_t>(1, slots) || cost < min_cost)) {
    batch.push_back(take_one(std::max(0, rank)));
    cost += costs_[batch.back()];
  }
  return batch;
}

}  // namespace muspec
