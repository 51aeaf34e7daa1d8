// Internal: the only file that includes LAPACKE/CBLAS. Thin wrappers that check `info` and
// turn failures into NumericalError naming the matrix.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace muspec::lapack {

/// Singular values (descending, LAPACK's order) of the row-major m x n matrix `a` via dgesdd
/// with jobz = 'N'. `a` is destroyed.
std::vector<double> gesdd_values(std::vector<double>& a, int64_t m, int64_t n, const std::string& label);

/// G = X^T X (n x n) when m >= n, else X X^T (m x m), for row-major X, in float64 (dsyrk).
/// Only the upper triangle (row-major) of the returned k x k matrix is filled.
std::vector<double> gram_of_smaller_side(const std::vector<double>& x, int64_t m, int64_t n);

/// Eigenvalues (ascending) of the symmetric k x k row-major matrix whose upper triangle is in
/// `g`, via dsyevd with jobz = 'N'. `g` is destroyed.
std::vector<double> syevd_values(std::vector<double>& g, int64_t k, const std::string& label);

}  // namespace muspec::lapack
