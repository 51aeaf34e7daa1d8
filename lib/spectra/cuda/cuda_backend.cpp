// CUDA entry points. Device discovery is real; the cuSOLVER singular-value routines arrive
// with the CUDA backend issue, so computing on the GPU is reported as not available yet.
#include <cuda_runtime.h>

#include "core/error.h"
#include "spectra/cuda_entry.h"

namespace muspec {

int cuda_devices_present() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
  return n;
}

std::unique_ptr<SpectralBackend> try_make_cuda_backend(const BackendOptions&, std::string* why) {
  if (cuda_devices_present() == 0) {
    if (why) *why = "no CUDA device found";
    return nullptr;
  }
  if (why) *why = "the CUDA spectral routines are not in this version yet";
  return nullptr;
}

std::unique_ptr<SpectralBackend> make_cuda_backend(const BackendOptions& options) {
  std::string why;
  if (auto b = try_make_cuda_backend(options, &why)) return b;
  throw NotAvailableError("--device cuda: " + why);
}

}  // namespace muspec
