// Internal: the entry points of the CUDA backend. Implemented in spectra/cuda/ when this
// build has CUDA, and in spectra/cuda_unavailable.cpp otherwise. Never include CUDA headers
// here.
#pragma once

#include <memory>
#include <string>

#include "spectra/backend.h"

namespace muspec {

/// Throws NotAvailableError ("built without CUDA", "no CUDA device found", ...).
std::unique_ptr<SpectralBackend> make_cuda_backend(const BackendOptions& options);
/// Returns nullptr and the reason in *why when the CUDA backend cannot be used.
std::unique_ptr<SpectralBackend> try_make_cuda_backend(const BackendOptions& options, std::string* why);
int cuda_devices_present();

}  // namespace muspec
