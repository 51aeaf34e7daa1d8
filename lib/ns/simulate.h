// The matrix-level check: run the real NS iteration on a matrix (Eigen, in float64, float32 or
// emulated bfloat16) and compare the output's singular values with the scalar-map prediction
// (reference §2.1, §9.5, §15 item 6). A GPU version belongs to the CUDA backend.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ns/schedule.h"

#include "spectra/backend.h"


namespace muspec::ns {

enum class Precision {
  F64,   ///< everything in float64
  F32,   ///< everything in float32
  BF16,  ///< as Muon kernels: cast to bf16 first, fp32 products, every product and element-wise
         ///< result rounded to bf16 (round to nearest even)
};
const char* precision_name(Precision p);           ///< "f64", "f32", "bf16"

/// Where a bf16 kernel rounds. Muon is written both ways, and under the bf16 floor the choice
/// moves a direction's gain by a few hundredths (docs/ns-config.md "Precision").
enum class Bf16Kernel {
  Unfused,  ///< every product and element-wise result rounded, the norm of the bf16 matrix is
            ///< bf16 (Keller Jordan's reference: `b * A + c * A @ A` on bf16 tensors)
  Fused,    ///< products rounded; b·A + c·A² and a·X + B·X formed in float32 from the rounded
            ///< products and rounded once, the norm kept in float32 (baddbmm-style kernels such
            ///< as torch.optim.Muon, and muspec_torch.newton_schulz)
};
const char* bf16_kernel_name(Bf16Kernel k);  ///< "unfused", "fused"

/// One rounding realization of the bf16 iteration: the kernel, and optionally every product's
/// float32 result moved by up to `jitter_ulps` float32 ulps (uniform, seeded) before it is
/// rounded, a stand-in for another GEMM's accumulation order. Ignored at f64 and f32.
struct Bf16Rounding {
  Bf16Kernel kernel = Bf16Kernel::Unfused;
  int jitter_ulps = 0;
  uint64_t seed = 0;
};

/// The realizations a bf16 promise is checked in: both kernels exactly, plus `jittered` seeded
/// realizations of each with kBf16JitterUlps.
std::vector<Bf16Rounding> bf16_realizations(int jittered);
inline constexpr int kBf16JitterUlps = 4;
Precision parse_precision(const std::string& s);   ///< throws UsageError

/// Runs `steps` steps of `schedule` on the rows×cols row-major float64 matrix `g` as the
/// kernels do (reference §2.2, §2.3, §3.1): transpose when rows > cols, divide by
/// ‖G‖_F·(1+δ) + ε, then per step A = XXᵀ, B = bA + cA² (bA for a cubic), X ← aX + BX,
/// and transpose back. Returns the rows×cols row-major result as float64.
std::vector<double> newton_schulz(const Schedule& schedule, int steps, Precision precision,
                                  const double* g, int64_t rows, int64_t cols, const Bf16Rounding& rounding = {});

/// The same iteration on the GPU with cuBLAS (Device::Cuda; F64, F32, or BF16 = bf16 storage
/// with float32 accumulation, as Muon kernels run). Device::Cpu is newton_schulz() above.
/// Throws NotAvailableError for Cuda in a build without CUDA or on a machine without a GPU.
std::vector<double> newton_schulz_on(Device device, const Schedule& schedule, int steps, Precision precision,
                                     const double* g, int64_t rows, int64_t cols);

/// How far measured output singular values are from the prediction.
struct Agreement {
  int64_t count = 0;
  double max_abs_error = 0.0;  ///< max |measured_i − predicted_i| (both sorted ascending)
  double max_rel_error = 0.0;  ///< max |measured_i − predicted_i| / predicted_i over the values
                               ///< with predicted_i ≥ 1e-3·max predicted (below: noise floor)
  double rms_error = 0.0;      ///< √mean (measured_i − predicted_i)²
  std::vector<double> predicted;  ///< |scalar map| of the input's singular values, ascending
  std::vector<double> measured;   ///< singular values of the NS output, ascending
};

/// Compares two spectra of equal length (sorted here).
Agreement compare_spectra(std::vector<double> predicted, std::vector<double> measured);

/// The whole check for one matrix: singular values of `g` (LAPACK SVD via `backend`), the
/// scalar-map prediction with the kernel's normalization (σ / (‖G‖_F(1+δ) + ε)), the
/// iteration in `precision` on `device`, and the singular values of its output. `label`
/// names the matrix in errors.
Agreement simulate_matrix(const Schedule& schedule, int steps, Precision precision,
                          const double* g, int64_t rows, int64_t cols, SpectralBackend& backend,
                          const std::string& label, Device device = Device::Cpu);

}  // namespace muspec::ns
