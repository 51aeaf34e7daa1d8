// What a schedule does to a spectrum: band and energy fractions, output range, worst deviation
// from 1, the failure threshold (reference §10) and the fewest steps for a lower bound ℓ.
//
// All inputs are normalized singular values s = σ/‖G‖_F, which lie in (0, 1] for any matrix
// (reference §2.2). The schedule's own normalization (1+δ) is applied on top, as the kernel does.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ns/schedule.h"

namespace muspec::ns {

/// Quality figures of one spectrum after `steps` steps.
struct SpectrumQuality {
  int64_t count = 0;             ///< singular values evaluated (zeros included)
  int64_t in_band = 0;           ///< of which land in the band
  double band_fraction = 0.0;    ///< in_band / count
  double energy_fraction = 0.0;  ///< Σσ² over values landing in the band / Σσ²
  Interval input_range;          ///< [min s, max s] of the normalized inputs
  Interval output_range;         ///< [min, max] of the outputs
  double worst_deviation = 0.0;  ///< max |output − 1|
  double frobenius = 0.0;        ///< ‖G‖_F used for the normalization
};

/// Evaluates raw singular values `sigma` (any order, finite, ≥ 0) of one matrix. `frobenius`
/// is ‖G‖_F; when NaN it is computed as √Σσ² (exact for a full spectrum). The normalization ε
/// is applied with that norm. Throws UsageError for negative or non-finite values, an empty
/// spectrum, or values above ‖G‖_F (normalized input outside (0, 1]).
SpectrumQuality evaluate_spectrum(const Schedule& schedule, int steps,
                                  const std::vector<double>& sigma, const Band& band,
                                  double frobenius = NAN);

/// Parses "LO,HI" (0 < LO < HI, finite). Throws UsageError naming the problem.
Band parse_band(const std::string& text);

/// Throws UsageError with a clear message unless 0 < lower <= 1 ("what" names the quantity).
void check_unit_input(double lower, const char* what);

/// Failure threshold (reference §10): the smallest normalized input s ∈ (0, 1] whose output
/// reaches the band's lower edge, scanning upward. Exact (bisection on the monotone predicate
/// "max over [0, s] of the output ≥ lo", evaluated with exact interval images).
/// nullopt when no input in (0, 1] reaches it.
std::optional<double> threshold(const Schedule& schedule, int steps, const Band& band);

/// The smallest ℓ such that every s ∈ [ℓ, 1] lands in the band (exact, by bisection on
/// interval images). nullopt when not even s = 1 does.
std::optional<double> coverage_lower(const Schedule& schedule, int steps, const Band& band);

/// True when every s ∈ [lower, 1] lands in the band after `steps` steps.
bool covers(const Schedule& schedule, int steps, double lower, const Band& band);

/// Fewest steps k ≤ max_steps such that every s ∈ [lower, 1] lands in the band (following the
/// schedule's past-end rule); nullopt when none does. Throws UsageError unless 0 < lower ≤ 1.
std::optional<int> min_steps(const Schedule& schedule, double lower, const Band& band,
                             int max_steps = 100);

}  // namespace muspec::ns
