// The CUDA entry points of a build without CUDA: every request is answered at run time.
#include "core/error.h"
#include "spectra/cuda_entry.h"

namespace muspec {

std::unique_ptr<SpectralBackend> make_cuda_backend(const BackendOptions&) {
  throw NotAvailableError("--device cuda: this muspec was built without CUDA "
                          "(reconfigure with the CUDA toolkit installed and MUSPEC_CUDA=AUTO or ON)");
}

std::unique_ptr<SpectralBackend> try_make_cuda_backend(const BackendOptions&, std::string* why) {
  if (why) *why = "built without CUDA";
  return nullptr;
}

int cuda_devices_present() { return 0; }

std::vector<double> cuda_newton_schulz(const std::vector<std::array<double, 3>>&, double, double, GpuPrecision,
                                       const double*, int64_t, int64_t) {
  throw NotAvailableError("--device cuda: this muspec was built without CUDA");
}

}  // namespace muspec
