// Floating-point cost of Newton–Schulz steps (reference §2.4).
//
// For an m×n matrix the kernel first transposes so that m ≤ n. A quintic step forms
// A = XXᵀ (2m²n), A² (2m³), B = bA + cA² (3m²), BX (2m²n) and aX + BX (2mn):
// 4m²n + 2m³ + 3m² + 2mn flops. A cubic step (c = 0) skips A²: A (2m²n), B = bA (m²),
// BX (2m²n), aX + BX (2mn): 4m²n + m² + 2mn. The normalization costs 3mn (norm and divide).
#pragma once

#include <cstdint>

#include "ns/schedule.h"

namespace muspec::ns {

/// Flops of one step with polynomial `p` on an m×n matrix (either orientation).
double step_flops(const OddPoly& p, int64_t rows, int64_t cols);
/// Matrix products of one step: 3 for a quintic, 2 for a cubic.
int step_matmuls(const OddPoly& p);
/// Flops of the normalization X / (‖X‖_F(1+δ) + ε): 3mn.
double normalization_flops(int64_t rows, int64_t cols);
/// Flops of `steps` steps of `schedule` including the normalization.
double schedule_flops(const Schedule& schedule, int steps, int64_t rows, int64_t cols);

}  // namespace muspec::ns
