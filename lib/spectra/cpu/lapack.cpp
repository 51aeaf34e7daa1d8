#include "spectra/cpu/lapack.h"

#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "core/error.h"

namespace muspec::lapack {

namespace {
lapack_int to_lapack_int(int64_t v, const std::string& label) {
  if (v > std::numeric_limits<lapack_int>::max())
    throw NumericalError(label + ": dimension " + std::to_string(v) + " exceeds LAPACK's integer range");
  return static_cast<lapack_int>(v);
}

void check_info(lapack_int info, const char* routine, const std::string& label) {
  if (info > 0) throw NumericalError(label + ": " + routine + " did not converge (info " + std::to_string(info) + ")");
  if (info < 0) throw NumericalError(label + ": " + routine + " rejected argument " + std::to_string(-info));
}
}  // namespace

std::vector<double> gesdd_values(double* a, int64_t m, int64_t n, const std::string& label) {
  // A row-major m x n matrix is the column-major n x m matrix A^T: same singular values,
  // and LAPACKE does not have to transpose a copy.
  const lapack_int rows = to_lapack_int(n, label), cols = to_lapack_int(m, label);
  std::vector<double> s(static_cast<size_t>(std::min(m, n)));
  const lapack_int info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'N', rows, cols, a, rows, s.data(), nullptr, 1, nullptr, 1);
  check_info(info, "dgesdd", label);
  return s;
}

void gram_of_smaller_side(const double* x, int64_t m, int64_t n, double* g) {
  // Row-major X (m x n) is column-major A = X^T (n x m, leading dimension n).
  const int64_t k = std::min(m, n);
  const auto im = static_cast<blasint>(m), in = static_cast<blasint>(n), ik = static_cast<blasint>(k);
  if (m >= n)  // G = X^T X = A A^T (n x n), inner dimension m
    cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, ik, im, 1.0, x, in, 0.0, g, ik);
  else         // G = X X^T = A^T A (m x m), inner dimension n
    cblas_dsyrk(CblasColMajor, CblasLower, CblasTrans, ik, in, 1.0, x, in, 0.0, g, ik);
}

void gram_of_smaller_side(const float* x, int64_t m, int64_t n, float* g) {
  const int64_t k = std::min(m, n);
  const auto im = static_cast<blasint>(m), in = static_cast<blasint>(n), ik = static_cast<blasint>(k);
  if (m >= n)
    cblas_ssyrk(CblasColMajor, CblasLower, CblasNoTrans, ik, im, 1.0f, x, in, 0.0f, g, ik);
  else
    cblas_ssyrk(CblasColMajor, CblasLower, CblasTrans, ik, in, 1.0f, x, in, 0.0f, g, ik);
}

std::vector<double> gram_of_smaller_side(const std::vector<double>& x, int64_t m, int64_t n) {
  const int64_t k = std::min(m, n);
  std::vector<double> g(static_cast<size_t>(k * k), 0.0);
  gram_of_smaller_side(x.data(), m, n, g.data());
  return g;
}

const char* tridiagonal_name(Tridiagonal t) { return t == Tridiagonal::TwoStage ? "dsyevd_2stage" : "dsyevd"; }

Tridiagonal faster_tridiagonal(int64_t k, int threads) {
  if (const char* env = std::getenv("MUSPEC_CPU_TRIDIAGONAL")) {
    if (std::strcmp(env, "one") == 0) return Tridiagonal::OneStage;
    if (std::strcmp(env, "two") == 0) return Tridiagonal::TwoStage;
  }
  // Measured with muspec_bench_cpu_routes (docs/spectral-methods.md, "Eigensolver routes"):
  // the two-stage reduction moves the BLAS-2 half of dsytrd into BLAS-3 + a band sweep, which
  // wins once the matrix no longer fits in cache; with more threads dsytrd's BLAS-3 half
  // scales and the crossing point moves up.
  const int64_t two_stage_from = threads <= 1 ? kTwoStageFromOneThread : kTwoStageFromThreads;
  return k >= two_stage_from ? Tridiagonal::TwoStage : Tridiagonal::OneStage;
}

std::vector<double> symmetric_eigenvalues(double* g, int64_t k, Tridiagonal route, std::vector<double>& work,
                                          const std::string& label) {
  const lapack_int ik = to_lapack_int(k, label);
  std::vector<double> w(static_cast<size_t>(k));
  lapack_int iwork = 1, info = 0;
  if (route == Tridiagonal::OneStage) {
    // dsyevd with jobz = 'N' needs 2k + 1 doubles: dsytrd's blocked panel uses part of it.
    // Ask anyway (a query is cheap) so that dsytrd gets its preferred block size.
    double query = 0;
    info = LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'N', 'L', ik, g, ik, w.data(), &query, -1, &iwork, -1);
    check_info(info, "dsyevd", label);
    if (work.size() < static_cast<size_t>(query)) work.resize(static_cast<size_t>(query));
    info = LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'N', 'L', ik, g, ik, w.data(), work.data(),
                               static_cast<lapack_int>(work.size()), &iwork, 1);
    check_info(info, "dsyevd", label);
  } else {
    double query = 0;
    info = LAPACKE_dsyevd_2stage_work(LAPACK_COL_MAJOR, 'N', 'L', ik, g, ik, w.data(), &query, -1, &iwork, -1);
    check_info(info, "dsyevd_2stage", label);
    if (work.size() < static_cast<size_t>(query)) work.resize(static_cast<size_t>(query));
    info = LAPACKE_dsyevd_2stage_work(LAPACK_COL_MAJOR, 'N', 'L', ik, g, ik, w.data(), work.data(),
                                      static_cast<lapack_int>(work.size()), &iwork, 1);
    check_info(info, "dsyevd_2stage", label);
  }
  return w;
}

std::vector<float> symmetric_eigenvalues(float* g, int64_t k, Tridiagonal route, std::vector<float>& work,
                                         const std::string& label) {
  const lapack_int ik = to_lapack_int(k, label);
  std::vector<float> w(static_cast<size_t>(k));
  lapack_int iwork = 1;
  const bool two = route == Tridiagonal::TwoStage;
  const char* name = two ? "ssyevd_2stage" : "ssyevd";
  auto call = [&](float* wk, lapack_int lwork, lapack_int liwork) {
    return two ? LAPACKE_ssyevd_2stage_work(LAPACK_COL_MAJOR, 'N', 'L', ik, g, ik, w.data(), wk, lwork, &iwork, liwork)
               : LAPACKE_ssyevd_work(LAPACK_COL_MAJOR, 'N', 'L', ik, g, ik, w.data(), wk, lwork, &iwork, liwork);
  };
  float query = 0;
  check_info(call(&query, -1, -1), name, label);
  // A float query above 2^24 can be rounded down: ask for a little more.
  const auto want = static_cast<size_t>(static_cast<double>(query) * 1.001) + 64;
  if (work.size() < want) work.resize(want);
  check_info(call(work.data(), static_cast<lapack_int>(work.size()), 1), name, label);
  return w;
}

std::vector<double> syevd_values(std::vector<double>& g, int64_t k, const std::string& label) {
  std::vector<double> work;
  return symmetric_eigenvalues(g.data(), k, Tridiagonal::OneStage, work, label);
}

}  // namespace muspec::lapack
