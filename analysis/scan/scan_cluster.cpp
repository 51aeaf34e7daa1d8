#include "scan/scan_cluster.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "scan/work_queue.h"

namespace muspec {

namespace {

// Messages, little-endian. To rank 0: u32 slots, u32 n, fingerprint (n bytes), then the journal
// entries of the batch just finished (none in the first request). From rank 0: u32 count, then
// count u64 matrix indices; count 0 means "no more work".
void put_u32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u64(std::string& s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t get_le(const std::string& s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(s[at + i])) << (8 * i);
  return v;
}

std::string request(size_t slots, const std::string& fingerprint, const std::string& entries) {
  std::string m;
  put_u32(m, static_cast<uint32_t>(slots));
  put_u32(m, static_cast<uint32_t>(fingerprint.size()));
  return m + fingerprint + entries;
}

std::string batch_message(const std::vector<size_t>& batch) {
  std::string m;
  put_u32(m, static_cast<uint32_t>(batch.size()));
  for (size_t i : batch) put_u64(m, i);
  return m;
}

std::vector<size_t> parse_batch(const std::string& m, size_t matrices) {
  if (m.size() < 4) throw Error("MPI: a damaged work message from rank 0");
  const uint64_t n = get_le(m, 0, 4);
  if (m.size() != 4 + 8 * n) throw Error("MPI: a damaged work message from rank 0");
  std::vector<size_t> batch;
  for (uint64_t k = 0; k < n; ++k) {
    const uint64_t i = get_le(m, 4 + 8 * k, 8);
    if (i >= matrices) throw Error("MPI: rank 0 sent matrix " + std::to_string(i) + " of a scan of " + std::to_string(matrices));
    batch.push_back(static_cast<size_t>(i));
  }
  return batch;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// MUSPEC_MPI_STATS=1: each rank prints where its time went (docs/benchmarks.md measures the
/// messaging cost per matrix with it).
double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

bool stats_wanted() {
  const char* v = std::getenv("MUSPEC_MPI_STATS");
  return v && std::strcmp(v, "1") == 0;
}

/// A rank other than 0. It keeps one request ahead: the request for its next batch goes out
/// (with the records of the batch just done) before it computes the current one, so rank 0's
/// answer arrives while it computes. Every message gets exactly one answer.
void run_worker(ScanTransport& t, const ClusterWork& w) {
  double waiting = 0, computing = 0, bytes = 0;
  size_t batches = 0, matrices = 0;
  auto ask = [&](const std::string& done) {
    t.send(0, request(w.slots, w.fingerprint, done));
    bytes += static_cast<double>(done.size());
  };
  auto answer = [&] {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<size_t> batch = parse_batch(t.receive_from_root(), w.costs.size());
    waiting += seconds_since(t0);
    return batch;
  };
  ask("");
  std::vector<size_t> current = answer();
  if (!current.empty()) ask("");  // one ahead
  while (!current.empty()) {
    const auto t1 = std::chrono::steady_clock::now();
    w.compute(current);
    std::string done;
    for (size_t i : current) done += w.encode(i);
    computing += seconds_since(t1);
    ++batches, matrices += current.size();
    std::vector<size_t> next = answer();  // to the request sent before computing
    ask(done);                            // the records, and a request for the batch after next
    if (next.empty()) {
      if (!answer().empty()) throw Error("MPI: rank 0 sent work after saying there was none");
      break;
    }
    current = std::move(next);
  }
  if (stats_wanted())
    std::fprintf(stderr, "muspec: MPI rank %d: %zu matrices in %zu batches, computing %.3f s, waiting for rank 0 %.3f s "
                 "(%.3f ms per batch), %.0f bytes of records sent\n", t.rank(), matrices, batches, computing, waiting,
                 1e3 * waiting / static_cast<double>(std::max<size_t>(1, batches)), bytes);
}

bool root_computes() {
  const char* v = std::getenv("MUSPEC_MPI_ROOT_COMPUTES");
  return !(v && std::strcmp(v, "0") == 0);
}

/// Rank 0's bookkeeping: the queue, who holds which matrix, and the checks on what comes back.
class Coordinator {
 public:
  Coordinator(ScanTransport& t, const ClusterWork& w)
      : t_(t), w_(w), queue_(w.costs, w.files, w.todo), owner_(w.costs.size(), -1) {
    for (size_t i : w.todo) owner_[i] = -2;  // to do, not handed out yet
  }

  /// Rank 0's own share, on a thread of its own (the main thread serves the other ranks).
  void compute_locally(std::atomic<bool>& stop) {
    for (;;) {
      std::vector<size_t> batch;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop) return;
        batch = hand_out(0, w_.slots);
      }
      if (batch.empty()) return;
      w_.compute(batch);
    }
  }

  /// Answers one request; returns false when that rank is done: no work left for it and none
  /// of its matrices still out.
  bool serve(int from, const std::string& m) {
    if (m.size() < 8 || m.size() < 8 + get_le(m, 4, 4)) throw Error("MPI rank " + std::to_string(from) + " sent a damaged message");
    const size_t slots = static_cast<size_t>(get_le(m, 0, 4));
    const std::string fingerprint = m.substr(8, static_cast<size_t>(get_le(m, 4, 4)));
    if (fingerprint != w_.fingerprint)
      throw Error("MPI rank " + std::to_string(from) + " selected other matrices than rank 0 (scan fingerprint " + fingerprint +
                  " against " + w_.fingerprint + "): every rank must see the same input files and options");
    take_results(from, m.substr(8 + fingerprint.size()));
    std::vector<size_t> batch;
    {
      std::lock_guard<std::mutex> lock(mu_);
      batch = hand_out(from, slots);
    }
    t_.send(from, batch_message(batch));
    std::lock_guard<std::mutex> lock(mu_);
    return !batch.empty() || held_[from] > 0;
  }

 private:
  std::vector<size_t> hand_out(int rank, size_t slots) {
    std::vector<size_t> batch = queue_.take(rank, slots, kMinBatchCost);
    for (size_t i : batch) owner_[i] = rank;
    held_[rank] += batch.size();
    return batch;
  }

  void take_results(int from, const std::string& entries) {
    if (entries.empty()) return;
    const std::string what = "the records of MPI rank " + std::to_string(from);
    JournalContents part = parse_journal(encode_journal_header({"", "", "", static_cast<int64_t>(w_.costs.size())}) + entries, what);
    if (!part.damage.empty()) throw Error(what + " are damaged: " + part.damage);
    for (auto& e : part.entries) {
      const size_t i = static_cast<size_t>(e.matrix);
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (owner_[i] != from) throw Error(what + " hold matrix " + std::to_string(i) + ", which was not given to it");
        owner_[i] = -1;
        --held_[from];
      }
      w_.accept(std::move(e));
    }
  }

  ScanTransport& t_;
  const ClusterWork& w_;
  std::mutex mu_;
  WorkQueue queue_;
  std::vector<int> owner_;  // rank computing each matrix; -1 none, -2 waiting in the queue
  std::map<int, size_t> held_;  // matrices each rank holds (handed out, records not back yet)
};

void run_root(ScanTransport& t, const ClusterWork& w) {
  Coordinator c(t, w);
  std::atomic<bool> stop{false};
  std::exception_ptr local_error;
  std::thread local;
  if (root_computes() || t.size() == 1)
    local = std::thread([&] {
      try {
        c.compute_locally(stop);
      } catch (...) {
        local_error = std::current_exception();
        stop = true;  // the main thread stops serving and rethrows it
      }
    });
  std::exception_ptr error;
  double serving = 0, serving_cpu = 0;
  size_t requests = 0;
  try {
    int working = t.size() - 1;
    while (working > 0 && !stop) {
      int from = 0;
      std::string m;
      if (!t.poll(from, m)) {
        // Polling with a short sleep rather than a blocking receive: Open MPI's blocking calls
        // spin on a core, which rank 0's own computing threads need.
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        continue;
      }
      const auto t0 = std::chrono::steady_clock::now();
      const double c0 = thread_cpu_seconds();
      if (!c.serve(from, m)) --working;
      serving += seconds_since(t0), serving_cpu += thread_cpu_seconds() - c0, ++requests;
    }
  } catch (...) {
    error = std::current_exception();
    stop = true;
  }
  if (local.joinable()) local.join();
  if (error) std::rethrow_exception(error);
  if (local_error) std::rethrow_exception(local_error);
  if (stats_wanted())
    std::fprintf(stderr, "muspec: MPI rank 0: served %zu requests in %.3f s, %.3f s of CPU (decoding and checking records, the queue, "
                 "the reply)\n", requests, serving, serving_cpu);
}

}  // namespace

void run_cluster_scan(ScanTransport& transport, const ClusterWork& work) {
  if (transport.rank() == 0)
    run_root(transport, work);
  else
    run_worker(transport, work);
}

}  // namespace muspec
