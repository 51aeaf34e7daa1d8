#include "ns/direction_gains.h"

#include <algorithm>
#include <numeric>

#include <Eigen/Dense>
#include <Eigen/SVD>

namespace muspec::ns {

namespace {
using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct InputDirections {
  Eigen::BDCSVD<Eigen::MatrixXd> svd;
  double frob = 0.0;
  std::vector<Eigen::Index> ascending;  // direction indices by ascending singular value
};

InputDirections input_directions(const double* g, int64_t rows, int64_t cols) {
  const Eigen::Map<const RowMatrix> a(g, rows, cols);
  InputDirections d{Eigen::BDCSVD<Eigen::MatrixXd>(Eigen::MatrixXd(a), Eigen::ComputeThinU | Eigen::ComputeThinV),
                    a.norm(), {}};
  d.ascending.resize(static_cast<size_t>(d.svd.singularValues().size()));
  std::iota(d.ascending.begin(), d.ascending.end(), Eigen::Index{0});
  const Eigen::VectorXd& sv = d.svd.singularValues();
  std::stable_sort(d.ascending.begin(), d.ascending.end(), [&](Eigen::Index p, Eigen::Index q) { return sv(p) < sv(q); });
  return d;
}

// u_iᵀ X v_i for every direction, in the order of d.ascending.
std::vector<double> gains_of(const InputDirections& d, const std::vector<double>& out, int64_t rows, int64_t cols) {
  const Eigen::Map<const RowMatrix> x(out.data(), rows, cols);
  std::vector<double> gains;
  for (Eigen::Index i : d.ascending) gains.push_back(d.svd.matrixU().col(i).dot(x * d.svd.matrixV().col(i)));
  return gains;
}

double normalized_s(const InputDirections& d, Eigen::Index i) {
  return d.frob > 0 ? d.svd.singularValues()(i) / d.frob : 0.0;
}
}  // namespace

std::vector<DirectionGain> direction_gains(const Schedule& schedule, int steps, Precision precision, const double* g,
                                           int64_t rows, int64_t cols, const Bf16Rounding& rounding) {
  const InputDirections d = input_directions(g, rows, cols);
  const std::vector<double> gains =
      gains_of(d, newton_schulz(schedule, steps, precision, g, rows, cols, rounding), rows, cols);
  std::vector<DirectionGain> out;
  for (size_t j = 0; j < gains.size(); ++j) out.push_back({normalized_s(d, d.ascending[j]), gains[j]});
  return out;
}

std::vector<DirectionGainRange> direction_gain_ranges(const Schedule& schedule, int steps, Precision precision,
                                                      const double* g, int64_t rows, int64_t cols,
                                                      const std::vector<Bf16Rounding>& roundings) {
  const InputDirections d = input_directions(g, rows, cols);
  std::vector<Bf16Rounding> runs = roundings;
  if (precision != Precision::BF16 || runs.empty()) runs = {Bf16Rounding{}};
  std::vector<DirectionGainRange> out;
  for (size_t r = 0; r < runs.size(); ++r) {
    const std::vector<double> gains =
        gains_of(d, newton_schulz(schedule, steps, precision, g, rows, cols, runs[r]), rows, cols);
    if (r == 0)
      for (size_t j = 0; j < gains.size(); ++j) out.push_back({normalized_s(d, d.ascending[j]), gains[j], gains[j]});
    for (size_t j = 0; j < gains.size(); ++j) {
      out[j].min_gain = std::min(out[j].min_gain, gains[j]);
      out[j].max_gain = std::max(out[j].max_gain, gains[j]);
    }
  }
  return out;
}

}  // namespace muspec::ns
