#include "ns/spectral_simulate.h"

#include <Eigen/SVD>

#include <algorithm>
#include <cmath>
#include <utility>

#include "core/error.h"
#include "ns/precision_rounding.h"

namespace muspec::ns {

namespace {

using detail::Mat;

// The matrix iterations in scalar type T with rounding rule R after every product and
// element-wise result. The input is tall (rows ≥ cols), so the Gram is the right one, OᵀO.
template <class T, class R>
class FamilyRunner {
 public:
  FamilyRunner(const SpectralMap& m, R r) : m_(m), r_(r), every_(symmetrize_every(m.steps)) {}

  Mat<T> run(Mat<T> o) const {
    o = r_(o);
    switch (m_.iteration) {
      case IterationKind::CoupledNewton:
        if (m_.power.num == 0) return product(o, coupled(gram(o)).second);
        for (int k = 0; k < m_.half_powers(); ++k) o = half_power(o);
        return o;
      case IterationKind::GuoHigham:
        return product(o, power(guo_higham(gram(o)), m_.root_power()));
      case IterationKind::NewtonSchulz: break;
    }
    MUSPEC_ASSERT(false);
    return o;
  }

 private:
  Mat<T> product(const Mat<T>& a, const Mat<T>& b) const { return r_(Mat<T>(a * b)); }
  Mat<T> gram(const Mat<T>& o) const { return product(o.transpose(), o); }
  Mat<T> eye(Eigen::Index n) const { return Mat<T>::Identity(n, n); }
  void symmetrize(Mat<T>& x) const { x = r_(Mat<T>((x + x.transpose()) * T(0.5))); }
  bool symmetrize_after(int idx) const { return idx > 0 && idx % every_ == 0; }

  // A ← (A + shift·I)/‖A + shift·I‖_F; returns the norm.
  T regularize(Mat<T>& a) const {
    const T n = static_cast<T>(a.rows());
    const T trace = r_.scalar(static_cast<T>(a.trace()));
    const T shift = r_.scalar(static_cast<T>(static_cast<T>(m_.regularization.absolute) +
                                             static_cast<T>(m_.regularization.relative) * trace / n));
    a.diagonal().array() += shift;
    a = r_(a);
    const T norm = r_.scalar(static_cast<T>(a.norm()));
    a = r_(Mat<T>(a / norm));
    return norm;
  }

  // The paper's coupled iteration: returns (≈ A^{1/2}, ≈ A^{-1/2}).
  std::pair<Mat<T>, Mat<T>> coupled(Mat<T> y) const {
    const T norm = regularize(y);
    Mat<T> z = eye(y.rows());
    for (int idx = 0; idx < m_.steps; ++idx) {
      const Mat<T> t = r_(Mat<T>((T(3) * eye(y.rows()) - product(z, y)) * T(0.5)));
      y = product(y, t);
      z = product(t, z);
      if (symmetrize_after(idx)) symmetrize(y), symmetrize(z);
    }
    symmetrize(y), symmetrize(z);
    const T root_scale = std::sqrt(norm);
    return {r_(Mat<T>(y * root_scale)), r_(Mat<T>(z / root_scale))};
  }

  // Guo–Higham coupled inverse q-th root: X ← X·T, M ← T^q·M, T = ((q+1)I − M)/q.
  Mat<T> guo_higham(Mat<T> mm) const {
    const int q = m_.root_index();
    const T norm = regularize(mm);
    Mat<T> x = eye(mm.rows());
    for (int idx = 0; idx < m_.steps; ++idx) {
      const Mat<T> t = r_(Mat<T>((T(q + 1) * eye(mm.rows()) - mm) / T(q)));
      x = product(x, t);
      mm = product(power(t, q), mm);
      if (symmetrize_after(idx)) symmetrize(x), symmetrize(mm);
    }
    symmetrize(x);
    return r_(Mat<T>(x * static_cast<T>(std::pow(static_cast<double>(norm), -1.0 / q))));
  }

  // x^e by repeated squaring (the scalar map multiplies in the same order).
  Mat<T> power(const Mat<T>& x, int e) const {
    Mat<T> result, base = x;
    bool have = false;
    while (e > 0) {
      if (e & 1) result = have ? product(result, base) : base, have = true;
      e >>= 1;
      if (e > 0) base = product(base, base);
    }
    return have ? result : eye(x.rows());
  }

  // O ↦ O·G^{-1/4}: inverse square root of G, then the square root of that (paper's order).
  Mat<T> half_power(const Mat<T>& o) const {
    const Mat<T> inv_sqrt = coupled(gram(o)).second;
    return product(o, coupled(inv_sqrt).first);
  }

  const SpectralMap& m_;
  R r_;
  int every_;
};

template <class T, class R>
Mat<double> run_as(const SpectralMap& m, const Mat<double>& tall, R r) {
  return FamilyRunner<T, R>(m, r).run(tall.cast<T>()).template cast<double>();
}

}  // namespace

int symmetrize_every(int steps) { return std::max(1, std::min(steps / 3, 5)); }

std::vector<double> spectral_power_matrix(const SpectralMap& m, Precision precision, const double* g,
                                          int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) throw UsageError("spectral map: empty matrix");
  m.validate();
  if (m.is_identity()) return std::vector<double>(g, g + rows * cols);
  if (m.iteration == IterationKind::NewtonSchulz) return newton_schulz(m.schedule, m.steps, precision, g, rows, cols);
  const bool wide = cols > rows;  // left Gram OOᵀ = right Gram of Oᵀ
  Eigen::Map<const Mat<double>> in(g, rows, cols);
  const Mat<double> tall = wide ? Mat<double>(in.transpose()) : Mat<double>(in);
  Mat<double> y;
  switch (precision) {
    case Precision::F64: y = run_as<double>(m, tall, detail::NoRound{}); break;
    case Precision::F32: y = run_as<float>(m, tall, detail::NoRound{}); break;
    case Precision::BF16: y = run_as<float>(m, tall, detail::RoundBf16{}); break;
  }
  std::vector<double> out(static_cast<size_t>(rows * cols));
  Eigen::Map<Mat<double>> o(out.data(), rows, cols);
  if (wide)
    o = y.transpose();
  else
    o = y;
  return out;
}

std::vector<double> exact_spectral_power(SpectralPower p, const double* g, int64_t rows, int64_t cols) {
  const Eigen::MatrixXd a = Eigen::Map<const Mat<double>>(g, rows, cols);
  const Eigen::BDCSVD<Eigen::MatrixXd> svd(a, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const Eigen::VectorXd powered =
      svd.singularValues().unaryExpr([&](double s) { return s > 0.0 ? std::pow(s, p.value()) : 0.0; });
  const Mat<double> t = svd.matrixU() * powered.asDiagonal() * svd.matrixV().transpose();
  return std::vector<double>(t.data(), t.data() + t.size());
}

double matrix_scaled_rel_error(const std::vector<double>& x, const std::vector<double>& target) {
  return scaled_rel_error(x, target);  // the Frobenius norm is the 2-norm of the entries
}

double FamilyDirection::rel_error(SpectralPower p) const {
  if (!(sigma > 0.0)) return 0.0;
  return std::abs(value / std::pow(sigma, p.value()) - 1.0);
}

std::vector<FamilyDirection> family_directions(const SpectralMap& m, Precision precision, const double* g,
                                               int64_t rows, int64_t cols, const std::string& label) {
  const std::vector<double> out = spectral_power_matrix(m, precision, g, rows, cols);
  if (std::any_of(out.begin(), out.end(), [](double v) { return !std::isfinite(v); }))
    throw NumericalError(label + ": the " + precision_name(precision) + " iteration diverged (NaN/Inf in its output)");
  const Eigen::MatrixXd a = Eigen::Map<const Mat<double>>(g, rows, cols);
  const Eigen::BDCSVD<Eigen::MatrixXd> svd(a, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const Eigen::Map<const Mat<double>> x(out.data(), rows, cols);
  std::vector<FamilyDirection> dirs;
  for (Eigen::Index i = 0; i < svd.singularValues().size(); ++i)
    dirs.push_back({svd.singularValues()(i), svd.matrixU().col(i).dot(x * svd.matrixV().col(i))});
  std::sort(dirs.begin(), dirs.end(), [](const FamilyDirection& p, const FamilyDirection& q) { return p.sigma < q.sigma; });
  return dirs;
}

FamilySimulation simulate_family(const SpectralMap& m, Precision precision, const double* g, int64_t rows,
                                 int64_t cols, SpectralBackend& backend, const std::string& label) {
  const size_t n = static_cast<size_t>(rows * cols);
  std::vector<double> work(g, g + n);
  const std::vector<double> sigma = backend.singular_values(work, rows, cols, SpectralMethod::Svd, label).sigma;
  if (sigma.empty() || !(*std::max_element(sigma.begin(), sigma.end()) > 0.0))
    throw NumericalError(label + ": zero matrix");
  FamilySimulation s;
  const std::vector<double> predicted = map_spectrum(m, sigma);
  s.predicted_rel_error = scaled_rel_error(predicted, exact_power(sigma, m.power));

  std::vector<double> x = spectral_power_matrix(m, precision, g, rows, cols);
  const auto bad = std::count_if(x.begin(), x.end(), [](double v) { return !std::isfinite(v); });
  if (bad > 0)  // a real outcome (bf16 coupled Newton can diverge), named rather than fed to LAPACK
    throw NumericalError(label + ": the " + precision_name(precision) + " iteration diverged (" + std::to_string(bad) +
                         " NaN/Inf entries in its output)");
  s.rel_error = matrix_scaled_rel_error(x, exact_spectral_power(m.power, g, rows, cols));
  std::vector<double> measured = backend.singular_values(x, rows, cols, SpectralMethod::Svd, label).sigma;
  s.spectrum = compare_spectra(predicted, std::move(measured));
  s.cost = family_cost(m, rows, cols);
  return s;
}

}  // namespace muspec::ns
