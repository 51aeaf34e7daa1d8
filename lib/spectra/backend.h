// The spectral backend interface: all singular values of a matrix, no vectors.
//
// Backends (spectra/cpu/, spectra/cuda/) implement two hooks, one per method; argument checks
// and the `auto` policy live once, in SpectralBackend::singular_values().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"

namespace muspec {

enum class SpectralMethod : uint8_t {
  Auto,  ///< gram, falling back to svd when sigma_min is under gram's reliable floor
  Svd,   ///< bidiagonal SVD in float64 (LAPACK ?gesdd, values only): the reference
  Gram,  ///< float64 Gram matrix of the smaller side + symmetric eigensolver (faster)
  /// float32 Gram matrix + float32 eigensolver (faster still, CPU only): a far higher floor
  /// (gram32_floor, about 2e-2 sigma_max), so only on request, never picked by auto.
  Gram32,
};

enum class Device : uint8_t { Auto, Cpu, Cuda };

const char* method_name(SpectralMethod m);   ///< "auto", "svd", "gram", "gram32"
SpectralMethod parse_method(const std::string& s);  ///< throws UsageError
const char* device_name(Device d);
Device parse_device(const std::string& s);          ///< throws UsageError

/// Relative accuracy that a method's reliable floor guarantees: every singular value at or
/// above the floor is within this relative error of the exact singular value of the stored
/// matrix (docs/spectral-methods.md derives the floors and shows the measurements).
inline constexpr double kFloorRelativeAccuracy = 1e-2;

/// Reliable floor of each method, in units of sigma, with c = sqrt(max(m, n)) * eps64:
///  svd:  c * sigma_max / kFloorRelativeAccuracy
///        (backward-stable SVD: absolute error about c * sigma_max)
///  gram: sqrt(c / (2 kFloorRelativeAccuracy)) * sigma_max
///        (eigenvalue error about c * sigma_max^2, so sigma error c sigma_max^2 / (2 sigma))
double svd_floor(double sigma_max, int64_t rows, int64_t cols);
double gram_floor(double sigma_max, int64_t rows, int64_t cols);
///  gram32: sqrt(c32 / (2 kFloorRelativeAccuracy)) * sigma_max, c32 = sqrt(max(m, n)) * eps32
///        (the same model with the Gram matrix and its eigenvalues in float32)
double gram32_floor(double sigma_max, int64_t rows, int64_t cols);

struct SingularValues {
  std::vector<double> sigma;  ///< min(rows, cols) values, ascending, non-negative
  SpectralMethod method = SpectralMethod::Svd;  ///< the method that produced them (never Auto)
  double floor = 0.0;         ///< reliable floor of that method for this matrix
  Device device = Device::Cpu;  ///< where they were computed (a GPU backend may fall back to the CPU)
};

/// A stored matrix, decoded and analysed in one call (SpectralBackend::spectrum_of_stored).
struct StoredSpectrum {
  DenseConversion conversion;            ///< NaN/Inf count and ||X||_F after the input transform
  std::optional<SingularValues> values;  ///< absent when the matrix has non-finite entries
};

class MUSPEC_SHARED_TYPE SpectralBackend {
 public:
  virtual ~SpectralBackend() = default;
  virtual Device device() const = 0;
  /// Human-readable description ("cpu: OpenBLAS 0.3.21, 2 threads").
  virtual std::string description() const = 0;
  /// How many matrices a caller should have in flight at once (e.g. one per CUDA stream);
  /// 0 leaves it to the caller.
  virtual int preferred_concurrency() const { return 0; }
  /// One-line notices about the calls so far that the caller should pass on to the user (e.g.
  /// "4 matrices were computed on the CPU after a device error; the first: ..."). Empty for
  /// the CPU backend.
  virtual std::vector<std::string> notices() const { return {}; }

  /// Singular values of the rows x cols row-major float64 matrix `x` (finite entries only).
  /// `x` may be overwritten. `label` names the matrix in error messages.
  SingularValues singular_values(std::vector<double>& x, int64_t rows, int64_t cols,
                                 SpectralMethod method, const std::string& label);

  /// Decodes the stored matrix `m` (any decodable dtype and strides), applies `transform`, and
  /// computes its singular values when every entry is finite. The base class decodes to float64
  /// on the host; the CUDA backend uploads the stored bytes (bf16/f16/f32/f64) and decodes them
  /// on the device. Same results either way: ||X||_F is summed in float64 in both.
  virtual StoredSpectrum spectrum_of_stored(const MatrixView& m, InputTransform transform, SpectralMethod method,
                                            const std::string& label);

 protected:
  using ValuesRoute = std::function<std::vector<double>()>;
  /// The `method` policy over a backend's routes (ascending values each): gram, svd, gram32, or
  /// auto = gram, then svd when sigma_min is under gram's floor. Records method, floor and the
  /// device of each route's last call. Without a gram32 route, Gram32 throws NotAvailableError.
  SingularValues by_policy(SpectralMethod method, int64_t rows, int64_t cols, const ValuesRoute& gram,
                           const ValuesRoute& svd, const ValuesRoute& gram32 = nullptr);
  /// Where the calling thread's last hook call ran (a backend that falls back overrides this).
  virtual Device device_of_last_call() const { return device(); }
  /// Values of x (not modified), ascending, via the float64 Gram route.
  virtual std::vector<double> gram_values(const std::vector<double>& x, int64_t rows,
                                          int64_t cols, const std::string& label) = 0;
  /// Values of x (may be destroyed), ascending, via a float64 SVD.
  virtual std::vector<double> svd_values(std::vector<double>& x, int64_t rows, int64_t cols,
                                         const std::string& label) = 0;
  /// Values of x (not modified), ascending, via the float32 Gram route; empty function = this
  /// backend has none (the CPU backend has one).
  virtual ValuesRoute gram32_route(const std::vector<double>& /*x*/, int64_t /*rows*/, int64_t /*cols*/,
                                   const std::string& /*label*/) {
    return nullptr;
  }
};

struct BackendOptions {
  Device device = Device::Auto;
  int blas_threads = 0;  ///< threads the backend's BLAS may use per call; 0 = all cores
  int gpu_streams = 0;   ///< CUDA: matrices in flight at once, one stream each; 0 = default (8)
  int local_rank = -1;   ///< CUDA: this process among several on the machine; its GPU is
                         ///< local_rank % devices (spectra/gpu_choice.h); -1 = device 0
};

/// Creates the backend for `options.device`. Device::Auto picks CUDA when this build has it
/// and a GPU is present, else the CPU; `notice` (if not null) receives a one-line explanation
/// when Auto fell back. Device::Cuda without CUDA support or without a GPU throws
/// NotAvailableError.
std::unique_ptr<SpectralBackend> make_backend(const BackendOptions& options,
                                              std::string* notice = nullptr);

/// Number of usable CUDA devices (0 in a build without CUDA).
int cuda_device_count();

}  // namespace muspec
