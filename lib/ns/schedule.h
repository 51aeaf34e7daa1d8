// A Newton–Schulz schedule as a value: the per-step odd polynomials, the input normalization
// X / (‖X‖_F·(1+δ) + ε), what happens past the end of the list, and the band its outputs are
// judged on. Schedules are read from and written to a versioned JSON file (docs/ns.md).
#pragma once

#include <nlohmann/json.hpp>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "ns/polynomial.h"

namespace muspec::ns {

/// The target band [lo, hi] for output singular values.
using Band = Interval;

/// Input normalization of the NS kernel: X₀ = G / (‖G‖_F·(1+delta) + epsilon).
struct Normalization {
  double delta = 0.0;     ///< relative inflation of the Frobenius norm (Polar Express: 0.01)
  double epsilon = 1e-7;  ///< absolute guard, in the units of G
};

/// What a schedule does when asked for more steps than it lists.
enum class PastEnd {
  RepeatLast,  ///< keep applying the last polynomial (Polar Express kernel, reference §5.7)
  Cycle,       ///< start over from the first polynomial (per-step sets reused in blocks)
};

/// How a schedule's outputs behave, which sets its default band.
enum class Family {
  Settling,    ///< outputs settle in a band around 1 without converging (Keller Jordan's quintic)
  Converging,  ///< outputs converge to 1 (Polar Express, cubic, DeepSeek-V4, designed schedules)
};

/// Default bands (docs/ns.md explains the choice):
///  * settling: [0.68, 1.21], the float64 attractor [0.6818, 1.2024] of the KJ quintic
///    (reference §9.1) rounded outward;
///  * converging: [1−δ, 1+δ] with δ = 0.3 (CANS δ-orthogonalization, reference §7.3), whose
///    lower edge 0.7 is also the proxy failure target of reference §10.
constexpr double kSettlingBandLo = 0.68;
constexpr double kSettlingBandHi = 1.21;
constexpr double kConvergingBandDelta = 0.3;
Band default_band(Family f);

const char* family_name(Family f);        ///< "settling", "converging"
const char* past_end_name(PastEnd p);     ///< "repeat_last", "cycle"

struct Schedule {
  std::string name;                  ///< catalog name or file stem
  std::string source;                ///< provenance, one line
  std::vector<OddPoly> polys;        ///< applied in order; never empty in a valid schedule
  Normalization normalization;
  PastEnd past_end = PastEnd::RepeatLast;
  Family family = Family::Converging;
  int default_steps = 0;             ///< steps used when none are given; 0 = polys.size()
  std::optional<Band> band;          ///< overrides default_band(family)
  nlohmann::json metadata = nlohmann::json::object();  ///< free-form (design parameters)

  /// The polynomial applied at step k (0-based), following past_end.
  const OddPoly& step(int k) const;
  /// The first `steps` polynomials, following past_end.
  std::vector<OddPoly> polys_for(int steps) const;
  /// `steps` when given, else default_steps (or the list length). Throws UsageError when < 1.
  int resolve_steps(std::optional<int> steps) const;
  /// band, or the family default.
  Band target_band() const;
  /// Factor x₀ = s·factor applied to a normalized singular value s = σ/‖G‖_F:
  /// F / (F·(1+δ) + ε). With frobenius = +inf (the default) ε is neglected: 1/(1+δ).
  double input_factor(double frobenius = HUGE_VAL) const;
  /// Gain at zero of `steps` steps: the product of the a's (reference §9.4).
  double gain_at_zero(int steps) const;
  /// Throws UsageError naming the problem (empty list, non-finite or non-positive a, bad band...).
  void validate() const;
};

/// The versioned JSON form ("format": "muspec.ns.schedule", "version": 1).
nlohmann::json schedule_to_json(const Schedule& s);
/// Parses the versioned form, or the {"coefficients": [[a,b,c],...]} files written by the
/// Polar Express repository's save_coefficients(). Throws InputError naming `origin`.
Schedule schedule_from_json(const nlohmann::json& j, const std::string& origin);
/// Reads a schedule file. Throws InputError naming the file.
Schedule load_schedule_file(const std::string& path);
/// Writes a schedule file atomically.
void save_schedule_file(const Schedule& s, const std::string& path);

}  // namespace muspec::ns
