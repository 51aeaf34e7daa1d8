// MPI for `mpirun -n N muspec scan` (scan/mpi_scan.h): the only file that includes mpi.h.
// Compiled only when CMake found MPI (MUSPEC_MPI); mpi_unavailable.cpp stands in otherwise.
#include "scan/mpi_scan.h"

// The C API only: no C++ bindings to link.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>

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
  MPI_Comm_size(local, &local_size_);
  MPI_Comm_free(&local);
}

MpiSession::~MpiSession() { MPI_Finalize(); }

std::vector<std::string> MpiSession::gather_to_root(const std::string& mine) {
  std::vector<std::string> out;
  if (rank_ != 0) {
    uint64_t n = mine.size();
    MPI_Send(&n, 1, MPI_UINT64_T, 0, kTagSize, MPI_COMM_WORLD);
    for (uint64_t at = 0; at < n; at += kPiece)
      MPI_Send(mine.data() + at, static_cast<int>(std::min(kPiece, n - at)), MPI_CHAR, 0, kTagBytes, MPI_COMM_WORLD);
    return out;
  }
  for (int r = 1; r < size_; ++r) {
    uint64_t n = 0;
    MPI_Recv(&n, 1, MPI_UINT64_T, r, kTagSize, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    std::string bytes(n, '\0');
    for (uint64_t at = 0; at < n; at += kPiece)
      MPI_Recv(&bytes[at], static_cast<int>(std::min(kPiece, n - at)), MPI_CHAR, r, kTagBytes, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    out.push_back(std::move(bytes));
  }
  return out;
}

int MpiSession::broadcast(int value) {
  MPI_Bcast(&value, 1, MPI_INT, 0, MPI_COMM_WORLD);
  return value;
}

void MpiSession::abort(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);  // MPI_Abort does not return; this keeps [[noreturn]] honest
}

}  // namespace muspec
