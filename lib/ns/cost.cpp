#include "ns/cost.h"

#include <algorithm>

namespace muspec::ns {

double step_flops(const OddPoly& p, int64_t rows, int64_t cols) {
  const double m = static_cast<double>(std::min(rows, cols));
  const double n = static_cast<double>(std::max(rows, cols));
  if (p.degree() == 3) return 4.0 * m * m * n + m * m + 2.0 * m * n;
  return 4.0 * m * m * n + 2.0 * m * m * m + 3.0 * m * m + 2.0 * m * n;
}

int step_matmuls(const OddPoly& p) { return p.degree() == 3 ? 2 : 3; }

double normalization_flops(int64_t rows, int64_t cols) {
  return 3.0 * static_cast<double>(rows) * static_cast<double>(cols);
}

double schedule_flops(const Schedule& schedule, int steps, int64_t rows, int64_t cols) {
  double total = normalization_flops(rows, cols);
  for (int k = 0; k < steps; ++k) total += step_flops(schedule.step(k), rows, cols);
  return total;
}

}  // namespace muspec::ns
