// One scan over MPI ranks (`mpirun -n N muspec scan`, `srun muspec scan`; docs/cluster.md).
// Each rank scans its part of the cost-balanced partition (scan/shard.h, part = rank + 1), sends
// its matrices' records to rank 0 in the journal's entry encoding (scan/journal.h), and rank 0
// alone writes the outputs. MPI itself lives in mpi_scan.cpp (built with MPI) or
// mpi_unavailable.cpp (without); this header never includes mpi.h.
#pragma once

#include <string>
#include <vector>

namespace muspec {

/// Processes an MPI launcher started alongside this one, from its environment
/// (OMPI_COMM_WORLD_SIZE from Open MPI's mpirun, PMI_SIZE from MPICH/Hydra or Slurm's PMI-2,
/// SLURM_NTASKS under srun with PMIx), or 1 when not launched by MPI.
int mpi_world_size_from_env();

/// Whether this build has MPI (MUSPEC_MPI at configure time).
bool built_with_mpi();

/// MPI_COMM_WORLD, initialised for the lifetime of the object. Every call is made by the
/// main thread only. Errors are MPI's default (fatal: the launcher ends the job).
class MpiSession {
 public:
  /// Throws NotAvailableError in a build without MPI.
  MpiSession();
  ~MpiSession();  ///< MPI_Finalize
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  /// Ranks on this machine (MPI_Comm_split_type shared memory), to share its cores.
  int local_size() const { return local_size_; }

  /// Rank 0 receives every other rank's bytes, in rank order (1..size-1); the others send
  /// theirs and get an empty list. Any size (sent in pieces under 1 GiB).
  std::vector<std::string> gather_to_root(const std::string& mine);
  /// Rank 0's value, on every rank.
  int broadcast(int value);
  /// Ends every rank of the job with this exit code (MPI_Abort).
  [[noreturn]] void abort(int code);

 private:
  int rank_ = 0, size_ = 1, local_size_ = 1;
};

}  // namespace muspec
