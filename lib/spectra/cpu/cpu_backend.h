// The CPU spectral backend: OpenBLAS + LAPACKE.
#pragma once

#include <memory>

#include "spectra/backend.h"

namespace muspec {

std::unique_ptr<SpectralBackend> make_cpu_backend(const BackendOptions& options);

/// Sets the number of threads OpenBLAS uses for subsequent calls (process-wide).
void set_blas_threads(int n);
/// Threads OpenBLAS would use now.
int blas_threads();
/// Hardware threads available to this process.
int hardware_threads();

}  // namespace muspec
