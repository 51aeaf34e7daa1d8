#include "spectra/cpu/lapack.h"

#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <limits>

#include "core/error.h"

namespace muspec::lapack {

namespace {
lapack_int to_lapack_int(int64_t v, const std::string& label) {
  if (v > std::numeric_limits<lapack_int>::max())
    throw NumericalError(label + ": dimension " + std::to_string(v) + " exceeds LAPACK's integer range");
  return static_cast<lapack_int>(v);
}
}  // namespace

std::vector<double> gesdd_values(std::vector<double>& a, int64_t m, int64_t n, const std::string& label) {
  // A row-major m x n matrix is the column-major n x m matrix A^T: same singular values,
  // and LAPACKE does not have to transpose a copy.
  const lapack_int rows = to_lapack_int(n, label), cols = to_lapack_int(m, label);
  std::vector<double> s(static_cast<size_t>(std::min(m, n)));
  const lapack_int info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'N', rows, cols, a.data(), rows,
                                         s.data(), nullptr, 1, nullptr, 1);
  if (info > 0) throw NumericalError(label + ": dgesdd did not converge (info " + std::to_string(info) + ")");
  if (info < 0) throw NumericalError(label + ": dgesdd rejected argument " + std::to_string(-info));
  return s;
}

std::vector<double> gram_of_smaller_side(const std::vector<double>& x, int64_t m, int64_t n) {
  const int64_t k = std::min(m, n);
  std::vector<double> g(static_cast<size_t>(k * k), 0.0);
  const auto im = static_cast<blasint>(m), in = static_cast<blasint>(n), ik = static_cast<blasint>(k);
  if (m >= n)  // G = X^T X: X is m x n, k = n, inner dimension m
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, ik, im, 1.0, x.data(), in, 0.0, g.data(), ik);
  else         // G = X X^T: inner dimension n
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, ik, in, 1.0, x.data(), in, 0.0, g.data(), ik);
  return g;
}

std::vector<double> syevd_values(std::vector<double>& g, int64_t k, const std::string& label) {
  const lapack_int ik = to_lapack_int(k, label);
  std::vector<double> w(static_cast<size_t>(k));
  const lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'N', 'U', ik, g.data(), ik, w.data());
  if (info > 0) throw NumericalError(label + ": dsyevd did not converge (info " + std::to_string(info) + ")");
  if (info < 0) throw NumericalError(label + ": dsyevd rejected argument " + std::to_string(-info));
  return w;
}

}  // namespace muspec::lapack
