// Internal to the CUDA plugin (libmuspec_cuda.so): what cuda_plugin.cpp hands to the loader in
// muspec_core (spectra/cuda_loader.cpp). In namespace cuda so that no name here can bind to the
// loader's functions of the same purpose.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "spectra/cuda_entry.h"

namespace muspec::cuda {

/// CUDA devices the runtime can use (0 when none, or when the driver is too old).
int devices_present();
/// The backend, or nullptr and the reason in *why.
std::unique_ptr<SpectralBackend> try_make_backend(const BackendOptions& options, std::string* why);
/// See muspec::cuda_newton_schulz.
std::vector<double> newton_schulz(const std::vector<std::array<double, 3>>& steps, double delta, double epsilon,
                                  GpuPrecision precision, const double* g, int64_t rows, int64_t cols);

}  // namespace muspec::cuda
