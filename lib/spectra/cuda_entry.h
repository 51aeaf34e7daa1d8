// Internal: the entry points of the CUDA backend. Implemented in spectra/cuda/ when this
// build has CUDA, and in spectra/cuda_unavailable.cpp otherwise. Never include CUDA headers
// here.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>
#include <string>

#include "spectra/backend.h"

namespace muspec {

/// Throws NotAvailableError ("built without CUDA", "no CUDA device found", ...).
std::unique_ptr<SpectralBackend> make_cuda_backend(const BackendOptions& options);
/// Returns nullptr and the reason in *why when the CUDA backend cannot be used.
std::unique_ptr<SpectralBackend> try_make_cuda_backend(const BackendOptions& options, std::string* why);
int cuda_devices_present();

enum class GpuPrecision { F64, F32, BF16 };

/// The Newton–Schulz iteration on the GPU (spectra/cuda/cuda_ns.cpp): `steps` holds one
/// (a, b, c) per step; the rows x cols row-major float64 input is normalized by
/// ‖G‖_F(1+delta) + epsilon in float64, stored in `precision` (bf16: float32 accumulation), and
/// transposed when rows > cols. Returns the row-major result. Throws NotAvailableError without
/// CUDA or a device.
std::vector<double> cuda_newton_schulz(const std::vector<std::array<double, 3>>& steps, double delta, double epsilon,
                                       GpuPrecision precision, const double* g, int64_t rows, int64_t cols);

}  // namespace muspec
