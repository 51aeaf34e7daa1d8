// The spectral family O ↦ U Σᵖ Vᵀ (Muon is p = 0) and the iterations that approximate it
// without an SVD, as values with exact scalar maps on singular values (docs/spectral-family.md).
//
// Since O (OᵀO)^{(p−1)/2} = U Σᵖ Vᵀ, every member is O times a matrix function of the Gram
// G = OᵀO. The iterations form that function from polynomials in G, so they keep U and V and
// act on each singular value alone — but their regularization (a shift by the mean eigenvalue)
// and normalization (by ‖A‖_F) depend on the WHOLE spectrum. The scalar maps here therefore take
// the full spectrum, never one value.
//
// Iterations:
//  * newton-schulz (p = 0 only): an NS schedule (ns/schedule.h), the paper runs Keller Jordan's
//    quintic for 15 steps;
//  * coupled-newton: the coupled Newton(–Schulz) square-root / inverse-square-root iteration of
//    "Delving into Muon and Beyond" (arXiv 2602.04669, code Ocram7/BeyondMuon): p = 1/2 applies
//    it twice to reach G^{-1/4}; p = 1/4 applies the p = 1/2 map twice; p = 0 uses one call's
//    inverse square root. Any p = 2^{-k} is the p = 1/2 map applied k times;
//  * guo-higham: the coupled Newton iteration for the inverse q-th root (Guo & Higham, SIMAX 28,
//    2006; convergence: Iannazzo, SIMAX 28, 2006), for any rational p: G^{-(1−p)/2} = (G^{-1/q})^j.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ns/schedule.h"

namespace muspec::ns {

/// The exponent p of U Σᵖ Vᵀ as a reduced fraction num/den with 0 ≤ p ≤ 1.
struct SpectralPower {
  int num = 0, den = 1;
  double value() const { return static_cast<double>(num) / den; }
  std::string text() const;  ///< "0", "1/4", "1/2", "1", "3/10"
  bool operator==(const SpectralPower& o) const { return num == o.num && den == o.den; }
};

/// "1/4", "0.25", "0", "1", "0.3": decimals become the fraction with the smallest denominator
/// (at most kMaxPowerDenominator) within 1e-9. Throws UsageError outside [0, 1].
SpectralPower parse_power(const std::string& text);
constexpr int kMaxPowerDenominator = 64;

enum class IterationKind {
  NewtonSchulz,   ///< "newton-schulz": an NS schedule, p = 0 only
  CoupledNewton,  ///< "coupled-newton": the paper's square-root iteration, p ∈ {0, 2^-k}
  GuoHigham,      ///< "guo-higham": coupled inverse q-th root, any rational p
};
const char* iteration_name(IterationKind k);
IterationKind parse_iteration(const std::string& s);  ///< throws UsageError
/// What the paper uses: newton-schulz for p = 0, coupled-newton for p = 2^-k, else guo-higham.
IterationKind default_iteration(SpectralPower p);

/// Tikhonov shift A = G + (absolute + relative·tr(G)/n)·I, applied before every root (the
/// paper's defaults; it bounds the normalized eigenvalues away from 0 and biases the smallest
/// singular values: they come out as σ·(σ² + shift)^{(p−1)/2} instead of σᵖ).
struct Regularization {
  double absolute = 1e-6;
  double relative = 1e-4;
  double shift(double trace, int64_t n) const {
    return absolute + relative * trace / static_cast<double>(n);
  }
};

/// Default iterations per root computation in the paper's code (and KJ steps for p = 0).
constexpr int kPaperSteps = 15;

/// One member of the family together with the iteration that computes it.
struct SpectralMap {
  SpectralPower power;
  IterationKind iteration = IterationKind::CoupledNewton;
  int steps = kPaperSteps;      ///< iterations per root call (NS steps for newton-schulz)
  Regularization regularization;
  Schedule schedule;            ///< used by newton-schulz only (keller by default)

  /// p = 1: the update itself, no iteration.
  bool is_identity() const { return power.num == power.den; }
  /// coupled-newton: how many half-power maps (k for p = 2^-k; 0 for p = 0 and p = 1).
  int half_powers() const;
  /// guo-higham: G^{-(1−p)/2} = (G^{-1/q})^j with j/q reduced.
  int root_index() const;  ///< q
  int root_power() const;  ///< j
  /// Throws UsageError when the iteration cannot compute this power or steps < 1.
  void validate() const;
  /// "p=1/2 coupled-newton x15"
  std::string describe() const;
};

/// A validated map; `iteration` defaults to default_iteration(p), `schedule` to keller.
SpectralMap make_spectral_map(SpectralPower p, std::optional<IterationKind> iteration, int steps,
                              const Schedule* schedule = nullptr);

/// The exact target σᵖ, with 0 ↦ 0 for every p (directions outside the support stay zero).
std::vector<double> exact_power(const std::vector<double>& sigma, SpectralPower p);

/// Eigenvalues of √A and A^{-1/2} produced by one coupled Newton call on a symmetric A with
/// eigenvalues `lambda` (op for op what the matrix loop does to each eigenvalue).
struct RootValues {
  std::vector<double> root, inverse_root;
  double smallest_normalized = 0.0;  ///< min over (λ + shift)/‖A + shift·I‖_F: what the call starts from
};
RootValues coupled_newton_values(const std::vector<double>& lambda, int steps, const Regularization& reg);
/// Eigenvalues of A^{-1/q} produced by `steps` Guo–Higham iterations (same normalization).
RootValues guo_higham_values(const std::vector<double>& lambda, int q, int steps, const Regularization& reg);

/// The scalar map: the singular values the iteration outputs for a matrix whose FULL spectrum
/// (min(rows, cols) values, any order, ≥ 0) is `sigma`, in the same order. Float64.
std::vector<double> map_spectrum(const SpectralMap& m, const std::vector<double>& sigma);

/// The c minimizing ‖c·out − target‖₂: (out·target)/(out·out).
double least_squares_scale(const std::vector<double>& out, const std::vector<double>& target);

/// min over c of ‖c·out − target‖₂ / ‖target‖₂: for matrices sharing U and V this is the
/// Frobenius relative error with the overall scale left to the optimizer.
double scaled_rel_error(const std::vector<double>& out, const std::vector<double>& target);

/// What the iteration does to one spectrum.
struct FamilyEvaluation {
  std::vector<double> sigma;      ///< the input, ascending
  std::vector<double> output;     ///< the scalar map's output, same order
  /// |output / σᵖ − 1| (0 for σ = 0 mapped to 0). Judged at the iteration's own scale: the
  /// paper's code undoes its normalization (√s·Y, Z/√s), so an exact iteration gives σᵖ. This
  /// keeps the error monotone in σ (small values are the unconverged ones) and the threshold
  /// well defined; the scale-free figure is matrix_rel_error.
  std::vector<double> rel_error;
  double scale = 1.0;  ///< least_squares_scale(output, σᵖ): the c of matrix_rel_error
  double tolerance = 0.0;
  int64_t not_converged = 0;      ///< values with rel_error > tolerance
  double not_converged_fraction = 0.0;
  double max_rel_error = 0.0;
  double matrix_rel_error = 0.0;  ///< scaled_rel_error(output, σᵖ): what `ns simulate` measures
  double smallest_normalized = 0.0;  ///< first root call's smallest normalized eigenvalue (NaN for NS)
  /// rel_error at the q-quantile of σ (interpolated like the scan's quantiles, spectra/summary.h).
  double error_at_quantile(double q) const;
};
FamilyEvaluation evaluate_family(const SpectralMap& m, const std::vector<double>& sigma, double tolerance);

/// Fewest steps ≤ max_steps such that every singular value at or above the q-quantile has
/// rel_error ≤ tolerance; nullopt when none does. Scans upward, so steps − 1 fails.
std::optional<int> min_family_steps(SpectralMap m, const std::vector<double>& sigma, double quantile,
                                    double tolerance, int max_steps = 100);

/// Spectrum-free fact about one coupled Newton call: the smallest normalized eigenvalue a of
/// A/‖A‖_F with 1 − u_K(√a) ≤ tolerance after `steps` steps (u ← u(3 − u²)/2), by bisection.
double newton_threshold(int steps, double tolerance);

/// Cost on a rows×cols matrix: matrix products and flops (2·m·n·k per product).
struct FamilyCost {
  int64_t matmuls = 0;
  double flops = 0.0;
};
FamilyCost family_cost(const SpectralMap& m, int64_t rows, int64_t cols);
/// Products of one step: newton-schulz 3 (quintic) or 2 (cubic); coupled-newton 3 (ZY, YT,
/// TZ); guo-higham 2 + the products of T^q by repeated squaring.
int family_step_matmuls(const SpectralMap& m);

}  // namespace muspec::ns
