// parallel_for (lib/core/parallel): every index once, and an exception escaping a task is
// rethrown on the caller instead of ending the process from a worker thread.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/parallel.h"

TEST_CASE("parallel_for runs every index exactly once", "[parallel]") {
  for (const int threads : {1, 3, 8}) {
    std::vector<std::atomic<int>> seen(1000);
    muspec::parallel_for(seen.size(), threads, [&](size_t i) { ++seen[i]; });
    int wrong = 0;
    for (const auto& s : seen) wrong += s.load() != 1;
    CHECK(wrong == 0);
  }
  muspec::parallel_for(0, 4, [](size_t) { FAIL("no index to run"); });
}

TEST_CASE("parallel_for rethrows a task's exception on the caller and starts nothing more", "[parallel]") {
  for (const int threads : {1, 4}) {
    std::atomic<int> started{0};
    auto task = [&](size_t i) {
      ++started;
      if (i == 5) throw std::runtime_error("task 5 failed");
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    };
    CHECK_THROWS_WITH(muspec::parallel_for(1000, threads, task), "task 5 failed");
    CHECK(started.load() < 50);  // the rest of the 1000 were never started
  }
}
