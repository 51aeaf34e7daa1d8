// One scan shared by several processes (MPI ranks; docs/cluster.md). Rank 0 runs the dynamic
// queue (scan/work_queue.h): the other ranks ask it for matrices, compute them and send back
// their records with the next request; rank 0 keeps the journal, the progress and every
// record, so its outcomes are those of a one-process scan. Rank 0 also computes, on a thread of
// its own, unless MUSPEC_MPI_ROOT_COMPUTES=0 (docs/benchmarks.md, "Scans over MPI ranks").
// The messages travel through ScanTransport, which scan/mpi_scan.cpp implements with MPI; this
// header never includes mpi.h.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "scan/journal.h"

namespace muspec {

/// Point-to-point messages between the processes of one scan. Only the calling (main) thread
/// uses it.
class ScanTransport {
 public:
  virtual ~ScanTransport() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual void send(int to, const std::string& bytes) = 0;
  /// Rank 0: a message from any rank, if one has arrived (does not wait).
  virtual bool poll(int& from, std::string& bytes) = 0;
  /// The next message from rank 0 (waits, sleeping between checks rather than spinning).
  virtual std::string receive_from_root() = 0;
};

struct ClusterWork {
  std::vector<double> costs;      ///< every matrix of the scan (matrix_cost)
  std::vector<int> files;         ///< a file id per matrix (its first file)
  std::vector<size_t> todo;       ///< rank 0: the matrices left to compute (after the journal)
  std::string fingerprint;        ///< scan_plan.h: every rank must have selected the same matrices
  size_t slots = 1;               ///< matrices this process computes at once (threads or GPU streams)
  /// Computes these matrices (into the caller's outcomes; on rank 0 it also journals them and
  /// advances the progress).
  std::function<void(const std::vector<size_t>&)> compute;
  /// A computed matrix as a journal entry (scan/journal.h), to send to rank 0.
  std::function<std::string(size_t)> encode;
  /// Rank 0: a matrix computed by another rank (checked like a journal entry read from disk).
  std::function<void(JournalEntry&&)> accept;
};

/// Runs this process's side of the scan; returns when every matrix is done (rank 0) or rank 0
/// has no more work (other ranks). Throws Error when a rank scanned other matrices than rank 0
/// (another fingerprint) or sent damaged records; every other failure is the caller's (MPI
/// ends the job when a rank dies).
void run_cluster_scan(ScanTransport& transport, const ClusterWork& work);

/// Batches carry at least this much modelled work (matrix_cost units, ≈ flops), so that tiny
/// matrices do not cost one message round trip each.
inline constexpr double kMinBatchCost = 2e8;

}  // namespace muspec
