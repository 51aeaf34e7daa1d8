// Internal: the only file that includes LAPACKE/CBLAS. Thin wrappers that check `info` and
// turn failures into NumericalError naming the matrix.
//
// Every call here is column-major: a row-major m x n matrix is the column-major n x m matrix
// X^T (same singular values), and a k x k symmetric matrix stored as a row-major upper triangle
// is the same bytes as a column-major lower triangle. LAPACKE's row-major entry points copy and
// transpose the matrix first (LAPACKE_dge_trans / dtr_trans); these wrappers never do.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace muspec::lapack {

/// Singular values (descending, LAPACK's order) of the row-major m x n matrix `a` via dgesdd
/// with jobz = 'N'. `a` is destroyed.
std::vector<double> gesdd_values(double* a, int64_t m, int64_t n, const std::string& label);
inline std::vector<double> gesdd_values(std::vector<double>& a, int64_t m, int64_t n, const std::string& label) {
  return gesdd_values(a.data(), m, n, label);
}

/// G = X^T X (n x n) when m >= n, else X X^T (m x m), for the row-major m x n matrix X, in
/// float64 (dsyrk: half the flops of dgemm). Writes the lower triangle of the column-major
/// k x k matrix `g` (k = min(m, n)); the strict upper triangle is left as it was.
void gram_of_smaller_side(const double* x, int64_t m, int64_t n, double* g);
/// Same, into a fresh vector (tests and callers without a workspace).
std::vector<double> gram_of_smaller_side(const std::vector<double>& x, int64_t m, int64_t n);

/// The same Gram matrix in float32 (ssyrk) of the row-major float32 matrix `x` (gram32 route).
void gram_of_smaller_side(const float* x, int64_t m, int64_t n, float* g);

/// How the symmetric eigenvalue problem (values only) is reduced to a tridiagonal one; both are
/// followed by the same dsterf. dsyevd and dsyevr with jobz = 'N' both reduce to
/// OneStage + dsterf, so they are not separate routes.
enum class Tridiagonal : uint8_t {
  OneStage,  ///< dsytrd (half BLAS-2 dsymv: memory-bound, scales poorly over threads) = dsyevd
  TwoStage,  ///< dsytrd_2stage: dense -> band (BLAS-3) -> tridiagonal (bulge chasing) = dsyevd_2stage
};
const char* tridiagonal_name(Tridiagonal t);

/// Smallest k from which the two-stage reduction was measured faster (docs/spectral-methods.md).
inline constexpr int64_t kTwoStageFromOneThread = 2048;
inline constexpr int64_t kTwoStageFromThreads = 4096;
/// The same crossing for the float32 eigensolvers of the gram32 route (one thread), measured.
inline constexpr int64_t kTwoStageFromOneThreadF32 = 3072;

/// The faster reduction for a k x k matrix on `threads` BLAS threads, from the measured table in
/// docs/spectral-methods.md ("Eigensolver routes"). MUSPEC_CPU_TRIDIAGONAL=one|two overrides it.
Tridiagonal faster_tridiagonal(int64_t k, int threads);

/// Eigenvalues (ascending) of the symmetric k x k matrix whose lower triangle (column-major) is
/// in `g`; `g` is destroyed. `work` is scratch space reused across calls (grown as needed).
std::vector<double> symmetric_eigenvalues(double* g, int64_t k, Tridiagonal route, std::vector<double>& work,
                                          const std::string& label);
/// Same in float32 (ssyevd / ssyevd_2stage), for the gram32 route.
std::vector<float> symmetric_eigenvalues(float* g, int64_t k, Tridiagonal route, std::vector<float>& work,
                                         const std::string& label);
/// Same with dsyevd and a fresh workspace (the reference route).
std::vector<double> syevd_values(std::vector<double>& g, int64_t k, const std::string& label);

}  // namespace muspec::lapack
