// Recommendations checked where Muon runs: the matrix-level NS at the trainer's precision (bf16
// storage, float32 products) on each measured matrix, direction by direction. A direction whose
// normalized singular value is at or above the parameter's lower bound must come out with a
// gain u_iᵀ X v_i inside the band promised at that precision (docs/ns-config.md, "Precision").
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "ns/schedule.h"
#include "ns/simulate.h"

namespace muspec {

/// The band promised at a precision: the exact-arithmetic band widened by what rounding moves a
/// settled direction's gain (calibrated, docs/ns-config.md): 0 for f64, 1e-4 for f32,
/// kBf16BandAllowance for bf16.
ns::Band band_at_precision(const ns::Band& exact, ns::Precision precision);

/// Calibrated with muspec_bench_ns_precision on the sample-data momentum buffers (steps 100 and
/// 300 of all five runs) and synthetic spectra: with lower bounds ≥ 3e-3 the bf16 gains left
/// Keller's band by at most 0.0104 (Polar Express: 0); times 1.5.
inline constexpr double kBf16BandAllowance = 0.016;

/// Below this lower bound bf16 rounding decides a direction's fate (measured gains off by up to
/// 1.7 under 1e-3, 0.043 in [1e-3, 3e-3)): no step count is promised there.
inline constexpr double kBf16Floor = 3e-3;

/// The smallest lower bound a promise is made for at a precision (0 for f64 and f32).
double precision_floor(ns::Precision precision);

/// Where the matrix of a record is stored.
struct MatrixSource {
  std::string file, tensor;
  int64_t slice = -1;
};

/// The stored matrix as a dense row-major float64 array (rows × cols as stored), or nullopt with
/// `why` (file gone or changed, tensor missing, NaN/Inf).
std::optional<std::vector<double>> load_matrix(const MatrixSource& source, int64_t* rows, int64_t* cols, std::string* why);

/// Jittered realizations per bf16 kernel that a promise under the bf16 floor must also pass
/// (docs/ns-config.md "Under the floor"): there a direction's gain depends on the exact
/// rounding, so one arithmetic's result does not carry over to another's.
inline constexpr int kBf16JitteredUnderFloor = 3;

/// The rounding realizations a promise for lower bound `lower` is checked in at `precision`:
/// both bf16 kernels (exact), plus kBf16JitteredUnderFloor jittered ones each under the floor;
/// one run at f64 and f32.
std::vector<ns::Bf16Rounding> realizations_for(ns::Precision precision, double lower);

/// Gains of the directions with normalized singular value s ≥ lower after `steps` steps, over
/// every realization of realizations_for(precision, lower).
struct GainRange {
  double min_gain = std::numeric_limits<double>::infinity();
  double max_gain = -std::numeric_limits<double>::infinity();
  int64_t directions = 0;
  int realizations = 1;  ///< rounding realizations each matrix was run in
  void add(const GainRange& o);
  bool inside(const ns::Band& band) const { return directions == 0 || (band.lo <= min_gain && max_gain <= band.hi); }
};
GainRange gain_range(const ns::Schedule& schedule, int steps, ns::Precision precision, const std::vector<double>& g,
                     int64_t rows, int64_t cols, double lower);

}  // namespace muspec
