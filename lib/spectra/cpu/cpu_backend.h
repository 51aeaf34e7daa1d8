// The CPU spectral backend: OpenBLAS + LAPACKE.
#pragma once

#include <memory>
#include <string>

#include "spectra/backend.h"

namespace muspec {

std::unique_ptr<SpectralBackend> make_cpu_backend(const BackendOptions& options);

/// Sets the number of threads OpenBLAS uses for subsequent calls (process-wide).
void set_blas_threads(int n);
/// Threads OpenBLAS would use now.
int blas_threads();
/// Hardware threads available to this process.
int hardware_threads();
/// A one-line warning when OPENBLAS_CORETYPE forces OpenBLAS onto kernels older than the CPU
/// supports (e.g. Haswell on an AVX-512 machine); empty otherwise. The CPU backend reports it
/// once through notices().
std::string blas_kernel_downgrade();

}  // namespace muspec
