// A minimal fork-join helper: run task(i) for i in [0, count) on `threads` worker threads.
#pragma once

#include <cstddef>
#include <functional>

namespace muspec {

/// Calls task(i) for every i in [0, count), claiming indices in increasing order from a shared
/// counter, on min(threads, count) threads (the calling thread is one of them). Tasks should
/// catch and record their own errors; if one throws anyway, no further index is started, the
/// tasks already running finish, and the first exception is rethrown on the calling thread
/// (never std::terminate from a worker thread).
void parallel_for(size_t count, int threads, const std::function<void(size_t)>& task);

}  // namespace muspec
