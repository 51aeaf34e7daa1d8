// Whether an MPI launcher started this process (scan/mpi_scan.h); the same with or without MPI.
#include <cstdlib>
#include <string>

#include "scan/mpi_scan.h"

namespace muspec {

namespace {

int positive_env(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return 0;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return *end == '\0' && n > 0 && n < 1000000 ? static_cast<int>(n) : 0;
}

}  // namespace

int mpi_world_size_from_env() {
  if (int n = positive_env("OMPI_COMM_WORLD_SIZE")) return n;  // Open MPI's mpirun / srun with Open MPI
  if (int n = positive_env("PMI_SIZE")) return n;              // MPICH Hydra, Slurm PMI-1/PMI-2
  // srun --mpi=pmix sets PMIX_RANK and Slurm's task count (a plain srun without MPI sets no PMIX_RANK).
  if (std::getenv("PMIX_RANK"))
    if (int n = positive_env("SLURM_NTASKS")) return n;
  return 1;
}

}  // namespace muspec
