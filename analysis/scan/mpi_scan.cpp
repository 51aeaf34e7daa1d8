// MPI for `mpirun -n N muspec scan` (scan/mpi_scan.h): the only file that includes mpi.h.
// Compiled only when CMake found MPI (MUSPEC_MPI); mpi_unavailable.cpp stands in otherwise.
#include "scan/mpi_scan.h"

// The C API only: no C++ bindings to link.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <thread>

#include "core/error.h"

namespace muspec {

namespace {

constexpr int kTagSize = 1, kTagBytes = 2;
constexpr uint64_t kPiece = uint64_t{1} << 30;  // MPI counts are int: send in pieces under 2 GiB

}  // namespace

bool built_with_mpi() { return true; }

MpiSession::MpiSession() {
  int provided = 0;
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);  // only the main thread calls MPI
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
  MPI_Comm_rank(local, &local_rank_);
  MPI_Comm_size(local, &local_size_);
  MPI_Comm_free(&local);
  if (const LaunchInfo l = launch_from_env(); l.world_size != size_) {
    // An MPI launcher other than this build's (MPICH's mpiexec starting an Open MPI build):
    // every process would be a lone rank 0 writing the same outputs.
    MPI_Finalize();
    throw NotAvailableError(l.launcher + " started " + std::to_string(l.world_size) + " processes, but this muspec's MPI sees " +
                            std::to_string(size_) + ": launch it with the mpirun of the MPI it was built with (or srun --mpi=pmix)");
  }
}

MpiSession::~MpiSession() { MPI_Finalize(); }

void MpiSession::send(int to, const std::string& bytes) {
  const uint64_t n = bytes.size();
  MPI_Send(&n, 1, MPI_UINT64_T, to, kTagSize, MPI_COMM_WORLD);
  for (uint64_t at = 0; at < n; at += kPiece)
    MPI_Send(bytes.data() + at, static_cast<int>(std::min(kPiece, n - at)), MPI_CHAR, to, kTagBytes, MPI_COMM_WORLD);
}

namespace {

/// Waits for `request` sleeping 200 µs between checks: Open MPI's blocking calls spin on a
/// core, which the computing threads of this rank (and of the others on the node) need.
void wait_politely(MPI_Request& request, MPI_Status* status) {
  for (;;) {
    int done = 0;
    MPI_Test(&request, &done, status);
    if (done) return;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

std::string receive_body(int from, uint64_t n) {
  std::string bytes(n, '\0');
  for (uint64_t at = 0; at < n; at += kPiece)
    MPI_Recv(&bytes[at], static_cast<int>(std::min(kPiece, n - at)), MPI_CHAR, from, kTagBytes, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  return bytes;
}

}  // namespace

bool MpiSession::poll(int& from, std::string& bytes) {
  int arrived = 0;
  MPI_Status status;
  MPI_Iprobe(MPI_ANY_SOURCE, kTagSize, MPI_COMM_WORLD, &arrived, &status);
  if (!arrived) return false;
  from = status.MPI_SOURCE;
  uint64_t n = 0;
  MPI_Recv(&n, 1, MPI_UINT64_T, from, kTagSize, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  bytes = receive_body(from, n);  // MPI keeps one sender's messages in order: this one's pieces follow
  return true;
}

std::string MpiSession::receive_from_root() {
  uint64_t n = 0;
  MPI_Request request;
  MPI_Irecv(&n, 1, MPI_UINT64_T, 0, kTagSize, MPI_COMM_WORLD, &request);
  wait_politely(request, MPI_STATUS_IGNORE);
  return receive_body(0, n);
}

void MpiSession::abort(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);  // MPI_Abort does not return; this keeps [[noreturn]] honest
}

}  // namespace muspec
