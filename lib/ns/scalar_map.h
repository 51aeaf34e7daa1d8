// The scalar map of a schedule: what `steps` NS steps do to each normalized singular value
// s = σ/‖G‖_F (reference §2.1, §9). Exact float64 evaluation, vectorized over many values.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

#include "ns/schedule.h"

namespace muspec::ns {

/// out[i] = p_steps(…p_1(in[i]·f)) with f = schedule.input_factor(frobenius): the schedule's
/// normalization (1+δ, and ε when the Frobenius norm of the matrix is given) followed by its
/// polynomials. `in` and `out` may alias. Cost: about 6 flops per value and step.
void map_values(const Schedule& schedule, int steps, const double* in, double* out, size_t n,
                double frobenius = HUGE_VAL);
std::vector<double> map_values(const Schedule& schedule, int steps, const std::vector<double>& in,
                               double frobenius = HUGE_VAL);
/// One value.
double map_value(const Schedule& schedule, int steps, double s, double frobenius = HUGE_VAL);

/// Exact image of the normalized inputs [s.lo, s.hi] after `steps` steps (normalization
/// included): the output range of every s in the interval (compose_image).
Interval map_image(const Schedule& schedule, int steps, const Interval& s,
                   double frobenius = HUGE_VAL);

}  // namespace muspec::ns
