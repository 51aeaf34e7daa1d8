// Internal: the entry points of the CUDA backend. In a build with CUDA they are implemented by
// spectra/cuda_loader.cpp, which loads the backend (spectra/cuda/, built as the plugin
// libmuspec_cuda.so) on first use and only when the driver reports a GPU: linking cuBLAS and
// cuSOLVER into every muspec process costs ~190 MB of resident memory at start-up, which a CPU
// run should not pay. Without CUDA, spectra/cuda_unavailable.cpp implements them. Never include
// CUDA headers here.
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

/// What libmuspec_cuda.so hands the loader: its extern "C" function kCudaPluginSymbol returns a
/// pointer to one of these. Bump kCudaPluginAbi whenever this struct or a type it uses changes
/// (SpectralBackend's virtual functions, BackendOptions, SingularValues, StoredSpectrum).
struct CudaPlugin {
  int abi;
  int (*devices_present)();
  std::unique_ptr<SpectralBackend> (*try_make_backend)(const BackendOptions& options, std::string* why);
  std::vector<double> (*newton_schulz)(const std::vector<std::array<double, 3>>& steps, double delta, double epsilon,
                                       GpuPrecision precision, const double* g, int64_t rows, int64_t cols);
};
inline constexpr int kCudaPluginAbi = 3;  // 2: SpectralBackend::notices(); 3: BackendOptions::local_rank
inline constexpr const char* kCudaPluginSymbol = "muspec_cuda_plugin";
inline constexpr const char* kCudaPluginFile = "libmuspec_cuda.so";

}  // namespace muspec
