// The MPI entry points of a build without MPI: every request is answered at run time.
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "scan/mpi_scan.h"

namespace muspec {

bool built_with_mpi() { return false; }

MpiSession::MpiSession() {
  throw NotAvailableError("started as " + std::to_string(mpi_world_size_from_env()) +
                          " MPI ranks, but this muspec was built without MPI (install libopenmpi-dev and reconfigure with "
                          "MUSPEC_MPI=AUTO or ON; or split the scan with --shard I/N and muspec merge)");
}

MpiSession::~MpiSession() = default;

void MpiSession::send(int, const std::string&) {}
bool MpiSession::poll(int&, std::string&) { return false; }
std::string MpiSession::receive_from_root() { return {}; }


void MpiSession::abort(int code) { std::exit(code); }

}  // namespace muspec
