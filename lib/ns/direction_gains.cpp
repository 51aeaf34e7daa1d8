#include "ns/direction_gains.h"

#include <algorithm>

#include <Eigen/Dense>
#include <Eigen/SVD>

namespace muspec::ns {

namespace {
using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
}  // namespace

std::vector<DirectionGain> direction_gains(const Schedule& schedule, int steps, Precision precision, const double* g,
                                           int64_t rows, int64_t cols) {
  const Eigen::Map<const RowMatrix> a(g, rows, cols);
  const Eigen::BDCSVD<Eigen::MatrixXd> svd(Eigen::MatrixXd(a), Eigen::ComputeThinU | Eigen::ComputeThinV);
  const std::vector<double> out = newton_schulz(schedule, steps, precision, g, rows, cols);
  const Eigen::Map<const RowMatrix> x(out.data(), rows, cols);
  const double frob = a.norm();
  std::vector<DirectionGain> gains;
  for (Eigen::Index i = 0; i < svd.singularValues().size(); ++i) {
    const Eigen::VectorXd xv = x * svd.matrixV().col(i);
    gains.push_back({frob > 0 ? svd.singularValues()(i) / frob : 0.0, svd.matrixU().col(i).dot(xv)});
  }
  std::sort(gains.begin(), gains.end(), [](const DirectionGain& p, const DirectionGain& q) { return p.s < q.s; });
  return gains;
}

}  // namespace muspec::ns
