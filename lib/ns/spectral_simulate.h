// The matrix-level check of the spectral family (ns/spectral_family.h): run the iteration on a
// real matrix (Eigen; float64, float32 or emulated bfloat16), as the paper's code does —
// regularization, Frobenius normalization, symmetrization every few steps, the square root
// taken twice for p = 1/2 — and compare with U Σᵖ Vᵀ from an SVD and with the scalar map.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ns/simulate.h"
#include "ns/spectral_family.h"
#include "spectra/backend.h"

namespace muspec::ns {

/// Y and Z (and Guo–Higham's X and M) are re-symmetrized after iteration idx (0-based) when
/// idx > 0 and idx % every == 0, and once at the end; every = max(1, min(steps/3, 5)) as in
/// the paper's code (5 for its 15 steps).
int symmetrize_every(int steps);

/// The iteration of `m` on the rows×cols row-major float64 matrix `g` in `precision`. Wide
/// inputs use the left Gram OOᵀ (the paper's "auto" side), which is the same as transposing.
/// newton-schulz runs ns::newton_schulz. Returns rows×cols row-major.
std::vector<double> spectral_power_matrix(const SpectralMap& m, Precision precision, const double* g,
                                          int64_t rows, int64_t cols);

/// U Σᵖ Vᵀ from a float64 SVD of `g` (Eigen BDCSVD), with σ = 0 ↦ 0. Row-major.
std::vector<double> exact_spectral_power(SpectralPower p, const double* g, int64_t rows, int64_t cols);

/// min over c of ‖c·x − target‖_F / ‖target‖_F.
double matrix_scaled_rel_error(const std::vector<double>& x, const std::vector<double>& target);

/// What the iteration does to one singular direction: value = u_iᵀ X_K v_i, with (u_i, v_i) the
/// input's singular vectors (float64 SVD) and X_K the iteration's output at `precision`. The
/// paper's iterations undo their normalization, so an exact one gives value = σ_iᵖ.
struct FamilyDirection {
  double sigma = 0.0;  ///< σ_i of the input
  double value = 0.0;  ///< u_iᵀ X_K v_i
  /// |value / σᵖ − 1| (0 when σ = 0): the per-value error `recommend --power --verify` bounds.
  double rel_error(SpectralPower p) const;
};
/// Every direction of the rows×cols row-major matrix `g`, ascending in σ. Throws
/// NumericalError naming `label` when the iteration diverges (NaN/Inf output).
std::vector<FamilyDirection> family_directions(const SpectralMap& m, Precision precision, const double* g,
                                               int64_t rows, int64_t cols, const std::string& label);

struct FamilySimulation {
  double rel_error = 0.0;            ///< measured: min_c ‖c·X_K − U Σᵖ Vᵀ‖_F / ‖U Σᵖ Vᵀ‖_F
  double predicted_rel_error = 0.0;  ///< the scalar map's value of the same quantity
  Agreement spectrum;                ///< output singular values against the scalar map
  FamilyCost cost;
};

/// The whole check for one matrix; singular values by `backend` (LAPACK SVD). Throws
/// NumericalError naming `label` when the iteration's output is not finite (it diverged).
FamilySimulation simulate_family(const SpectralMap& m, Precision precision, const double* g, int64_t rows,
                                 int64_t cols, SpectralBackend& backend, const std::string& label);

}  // namespace muspec::ns
