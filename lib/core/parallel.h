// A minimal fork-join helper: run task(i) for i in [0, count) on `threads` worker threads.
#pragma once

#include <cstddef>
#include <functional>

namespace muspec {

/// Calls task(i) for every i in [0, count), claiming indices in increasing order from a shared
/// counter, on min(threads, count) threads (the calling thread is one of them). Exceptions
/// escaping `task` are a bug: tasks must catch and record their own errors.
void parallel_for(size_t count, int threads, const std::function<void(size_t)>& task);

}  // namespace muspec
