// How a launcher started this process (scan/mpi_scan.h); the same with or without MPI.
#include <cstdlib>
#include <string>

#include "scan/mpi_scan.h"

namespace muspec {

namespace {

/// A whole number 0 <= n < 1e6 from `name`, or -1 when unset or not such a number.
int number_env(const EnvLookup& env, const char* name) {
  const char* v = env(name);
  if (!v || !*v) return -1;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return *end == '\0' && n >= 0 && n < 1000000 ? static_cast<int>(n) : -1;
}

}  // namespace

LaunchInfo launch_from_env(const EnvLookup& env) {
  LaunchInfo l;
  const int slurm_local = number_env(env, "SLURM_LOCALID");
  if (int n = number_env(env, "OMPI_COMM_WORLD_SIZE"); n > 0) {  // Open MPI's mpirun, or srun with Open MPI
    l = {"Open MPI", n, number_env(env, "OMPI_COMM_WORLD_RANK"), number_env(env, "OMPI_COMM_WORLD_LOCAL_RANK")};
  } else if (int n = number_env(env, "PMI_SIZE"); n > 0) {  // MPICH Hydra, srun --mpi=pmi2 / PMI-1
    const int hydra_local = number_env(env, "MPI_LOCALRANKID");
    l = {"PMI", n, number_env(env, "PMI_RANK"), hydra_local >= 0 ? hydra_local : slurm_local};
  } else if (env("PMIX_RANK") && number_env(env, "SLURM_NTASKS") > 0) {
    // srun --mpi=pmix sets PMIX_RANK and Slurm's task count (a plain srun sets no PMIX_RANK).
    l = {"srun (PMIx)", number_env(env, "SLURM_NTASKS"), number_env(env, "PMIX_RANK"), slurm_local};
  } else if (slurm_local >= 0 && number_env(env, "SLURM_PROCID") >= 0 && number_env(env, "SLURM_STEP_NUM_TASKS") > 0) {
    // A task of a plain srun (no MPI: tasks of a job step, e.g. each with its own --shard). Its
    // world size stays 1 (each task is its own scan); the local rank still picks its GPU. A
    // batch script's own shell has no SLURM_STEP_NUM_TASKS.
    l = {"srun", 1, 0, slurm_local};
    l.tasks = number_env(env, "SLURM_STEP_NUM_TASKS");
    l.task = number_env(env, "SLURM_PROCID");
  }
  if (l.world_size <= 1) l.world_size = 1;
  if (l.rank < 0) l.rank = 0;
  return l;
}

LaunchInfo launch_from_env() {
  return launch_from_env([](const char* name) -> const char* { return std::getenv(name); });
}

int mpi_world_size_from_env() { return launch_from_env().world_size; }

}  // namespace muspec
