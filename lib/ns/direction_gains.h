// What NS does to each singular direction of a real matrix, in the arithmetic the trainer uses.
// The scalar map says a direction with normalized singular value s comes out with gain p(s);
// in bf16 the iteration also rounds, mixes directions and moves the gain. The gain of direction
// i is u_iᵀ X_k v_i, with (u_i, v_i) the singular vectors of the input (float64 SVD) and X_k
// the iteration's output (ns::newton_schulz at that precision). This is the matrix-level check
// behind `recommend --verify` (analysis/configs/precision_check.h, docs/ns-config.md "Precision").
#pragma once

#include <cstdint>
#include <vector>

#include "ns/schedule.h"
#include "ns/simulate.h"

namespace muspec::ns {

struct DirectionGain {
  double s = 0.0;     ///< normalized input singular value σ_i / ‖G‖_F (the scale of rel_frob quantiles)
  double gain = 0.0;  ///< u_iᵀ X_k v_i after the iteration at the given precision
};

/// Gains of every direction of the rows×cols row-major matrix `g`, ascending in s.
std::vector<DirectionGain> direction_gains(const Schedule& schedule, int steps, Precision precision, const double* g,
                                           int64_t rows, int64_t cols, const Bf16Rounding& rounding = {});

/// A direction's gain over several rounding realizations.
struct DirectionGainRange {
  double s = 0.0;
  double min_gain = 0.0, max_gain = 0.0;
};

/// Gains of every direction in each bf16 realization of `roundings` (one SVD of the input;
/// at f64 and f32 one run whatever `roundings` holds), ascending in s.
std::vector<DirectionGainRange> direction_gain_ranges(const Schedule& schedule, int steps, Precision precision,
                                                      const double* g, int64_t rows, int64_t cols,
                                                      const std::vector<Bf16Rounding>& roundings);

}  // namespace muspec::ns
