// Optimal coefficient design: the greedy minimax construction of Polar Express
// (reference §5.1–5.6): at each step the odd polynomial minimizing max |1 − p(x)| on the current
// interval (Remez exchange), with cushioning, re-centring, the closed form near convergence and a
// safety factor applied after the recursion or inside it.
//
// Non-convergence is data: DesignResult::status says whether every Remez step levelled its
// error and whether the K steps bring [ℓ, U] within `tolerance` of 1. Nothing returns NaN.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ns/catalog.h"
#include "ns/polynomial.h"
#include "ns/schedule.h"

namespace muspec::ns {

/// Best odd polynomial of a degree approximating 1 on [l, u].
struct MinimaxPoly {
  OddPoly poly;
  double error = 0.0;           ///< max |p(x) − 1| on [l, u] (the levelled error E)
  std::vector<double> points;   ///< alternation points (l, q, [r,] u), ascending
  int iterations = 0;           ///< Remez exchanges performed
  bool converged = false;       ///< error levelled: max |p − 1| on [l, u] equals |E| to 1e-9
  bool closed_form = false;     ///< near-convergence closed form used instead of Remez
};

/// Remez exchange for the odd polynomial of degree 3 or 5 minimizing max_{[l,u]} |p(x) − 1|,
/// 0 < l < u. Equioscillation points start at q = (3l+u)/4, r = (l+3u)/4 (degree 5) and move to
/// the positive roots of p'; it stops when |ΔE| ≤ 1e-15 (reference §5.2). When l/u ≥ 1 − 5e-6
/// it returns the closed forms (15/8, −10/8, 3/8)/(u, u³, u⁵) (degree 5, §5.3) or
/// optimal_cubic(l, u) (degree 3). Throws UsageError for invalid l, u or degree.
MinimaxPoly minimax_odd(double l, double u, int degree);

/// Closed-form optimal odd cubic on [l, u] (reference §5.4): α = √(3/(u²+lu+l²)),
/// β = 4/(2 + lu(l+u)α³), (a, b) = (1.5αβ, −0.5α³β).
OddPoly optimal_cubic(double l, double u);

struct DesignOptions {
  double lower = 1e-3;         ///< ℓ, in (0, upper)
  double upper = 1.0;          ///< U, in (ℓ, 1]
  int steps = 8;               ///< K, in [1, 100]
  int degree = 5;              ///< 3 or 5
  /// Fit on [max(l, cushion·u), u]; 0 disables; < 1. Default: kPolarExpressCushion for
  /// degree 5 (the published recipe); 0 for degree 3, whose optimum on [l, u] stays moderate
  /// (a ≤ 3√3) for any l, so a cushion only slows it down (a ≈ 2.5 instead of 5.2 per step).
  std::optional<double> cushion;
  double safety = 1.01;        ///< sf ≥ 1; each polynomial but the last becomes p(x/sf)
  bool safety_inside = false;  ///< apply sf inside the recursion (§5.9) rather than after (§5.8)
  double tolerance = 1e-3;     ///< converged when every s ∈ [ℓ, U] ends within this of 1
};

enum class DesignStatus {
  Converged,          ///< every step levelled and the outputs end within tolerance of 1
  StepsInsufficient,  ///< every step levelled, but K steps leave a larger deviation
  RemezFailed,        ///< some step's exchange did not level its error (see steps[i])
};
const char* design_status_name(DesignStatus s);  ///< "converged", "steps_insufficient", "remez_failed"

struct DesignStep {
  OddPoly poly;              ///< final coefficients (re-centred, safety applied)
  Interval interval;         ///< [l_t, u_t] the recursion assumed at this step's input
  double fit_lower = 0.0;    ///< lower end actually optimized on (max(l, cushion·u))
  double minimax_error = 0;  ///< levelled error on [fit_lower, u_t]
  int remez_iterations = 0;
  bool closed_form = false;
  bool converged = true;
  bool recentred = false;
};

struct DesignResult {
  DesignOptions options;           ///< as given, with the cushion resolved
  std::vector<DesignStep> steps;   ///< exactly options.steps entries
  DesignStatus status = DesignStatus::Converged;
  Interval final_interval;         ///< the recursion's [l, 2 − l] after the last step
  Interval image;                  ///< exact image of [ℓ, U] under the final polynomials
  double worst_error = 0.0;        ///< max |out − 1| over [ℓ, U] = max(|image.lo−1|, |image.hi−1|)
  std::string message;             ///< one line describing the status

  std::vector<OddPoly> polys() const;
  /// A converging-family schedule (normalization ‖X‖_F + 1e-7, last polynomial repeated) with
  /// the design parameters and status in its metadata.
  Schedule to_schedule(const std::string& name = "designed") const;
};

/// Runs the greedy construction. Throws UsageError for options outside their ranges.
DesignResult design_schedule(const DesignOptions& options);

}  // namespace muspec::ns
