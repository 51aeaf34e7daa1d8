// One scan over MPI ranks (`mpirun -n N muspec scan`, `srun muspec scan`; docs/cluster.md).
// Rank 0 hands out the matrices from a dynamic queue, longest first (scan/scan_cluster.h); the
// other ranks send their records back in the journal's entry encoding (scan/journal.h), and
// rank 0 alone keeps the journal and writes the outputs. MPI itself lives in mpi_scan.cpp (built with MPI) or
// mpi_unavailable.cpp (without); this header never includes mpi.h.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "scan/scan_cluster.h"

namespace muspec {

/// What the launcher's environment says about this process.
struct LaunchInfo {
  std::string launcher;  ///< "Open MPI", "PMI", "srun (PMIx)", "srun" (no MPI), or "" (none)
  int world_size = 1;    ///< MPI processes started together (1: not an MPI launch)
  int rank = 0;          ///< this process among them
  int local_rank = -1;   ///< this process among those on its machine (-1: unknown)
  int tasks = 0, task = -1;  ///< a plain srun: SLURM_STEP_NUM_TASKS and SLURM_PROCID
};

using EnvLookup = std::function<const char*(const char*)>;

/// Reads the launcher's variables: OMPI_COMM_WORLD_SIZE/_RANK/_LOCAL_RANK (Open MPI's mpirun,
/// srun with Open MPI), PMI_SIZE/PMI_RANK with MPI_LOCALRANKID or SLURM_LOCALID (MPICH Hydra,
/// srun --mpi=pmi2), PMIX_RANK with SLURM_NTASKS and SLURM_LOCALID (srun --mpi=pmix), and a
/// plain srun's SLURM_PROCID/SLURM_LOCALID/SLURM_STEP_NUM_TASKS (no MPI: world size 1). Values
/// that are not whole numbers are ignored. `env` is getenv (tests pass their own).
LaunchInfo launch_from_env(const EnvLookup& env);
LaunchInfo launch_from_env();

/// launch_from_env().world_size: > 1 when an MPI launcher started several processes.
int mpi_world_size_from_env();

/// Whether this build has MPI (MUSPEC_MPI at configure time).
bool built_with_mpi();

/// MPI_COMM_WORLD, initialised for the lifetime of the object. Every call is made by the
/// main thread only. Errors are MPI's default (fatal: the launcher ends the job).
class MpiSession final : public ScanTransport {
 public:
  /// Throws NotAvailableError in a build without MPI.
  MpiSession();
  ~MpiSession();  ///< MPI_Finalize
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  /// This rank among the ranks on its machine, and how many there are (MPI_Comm_split_type
  /// shared memory): to share the machine's cores and GPUs.
  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }

  /// ScanTransport: messages of any size (sent in pieces under 1 GiB).
  void send(int to, const std::string& bytes) override;
  bool poll(int& from, std::string& bytes) override;
  std::string receive_from_root() override;
  /// Ends every rank of the job with this exit code (MPI_Abort).
  [[noreturn]] void abort(int code);

 private:
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
};

}  // namespace muspec
