// Internal: the cuSOLVER/cuBLAS counterpart of spectra/cpu/lapack.h. Every cuSOLVER call goes
// through one wrapper (buffer-size query, workspace, call, `info` check, named error).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "spectra/cuda/cuda_context.h"

namespace muspec::cuda {

/// Eigenvalues (ascending) of the float64 Gram matrix of the smaller side of the row-major
/// rows x cols float64 matrix `x`: upload (pinned, double-buffered), cublasDsyrk,
/// cusolverDnXsyevd without vectors. Throws NumericalError naming `label` on failure,
/// DeviceOutOfMemory when the device cannot hold the matrix.
std::vector<double> gram_eigenvalues(CudaContext& ctx, const double* x, int64_t rows, int64_t cols,
                                     const std::string& label);

/// Singular values (descending, cuSOLVER's order) of the same matrix via cusolverDnXgesvd
/// with jobu = jobvt = 'N' in float64 (the matrix is transposed on the device when needed,
/// since gesvd requires m >= n in column-major terms).
std::vector<double> gesvd_values(CudaContext& ctx, const double* x, int64_t rows, int64_t cols,
                                 const std::string& label);

/// Device bytes a call needs, workspace included (a generous estimate used to bound memory).
size_t gram_device_bytes(int64_t rows, int64_t cols);
size_t svd_device_bytes(int64_t rows, int64_t cols);

}  // namespace muspec::cuda
