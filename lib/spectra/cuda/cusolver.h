// Internal: the cuSOLVER/cuBLAS counterpart of spectra/cpu/lapack.h. Every cuSOLVER call goes
// through one wrapper (buffer-size query, workspace, call, `info` check, named error).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "spectra/cuda/cuda_context.h"

namespace muspec::cuda {

/// How the Gram matrix's eigenvalues are found: cusolverDnXsyevd (values only), or
/// cusolverDnDsytrd on the GPU then LAPACK dsterf on the calling host thread.
enum class GramEigensolver { Syevd, SytrdSterf };

/// Eigenvalues (ascending) of the float64 Gram matrix of the smaller side of the row-major
/// rows x cols float64 matrix `x`: upload (pinned, double-buffered), cublasDsyrk,
/// cusolverDnXsyevd without vectors. Throws NumericalError naming `label` on failure,
/// DeviceOutOfMemory when the device cannot hold the matrix.
std::vector<double> gram_eigenvalues(CudaContext& ctx, const double* x, int64_t rows, int64_t cols,
                                     const std::string& label, GramEigensolver solver);

/// Singular values (descending, cuSOLVER's order) of the same matrix via cusolverDnXgesvd
/// with jobu = jobvt = 'N' in float64 (the matrix is transposed on the device when needed,
/// since gesvd requires m >= n in column-major terms).
std::vector<double> gesvd_values(CudaContext& ctx, const double* x, int64_t rows, int64_t cols,
                                 const std::string& label);

/// The same two routes on a row-major float64 matrix already on the device (ctx.matrix after
/// decode_on_device). gram_eigenvalues_on_device leaves `d_x` intact; gesvd_values_on_device
/// may overwrite it.
std::vector<double> gram_eigenvalues_on_device(CudaContext& ctx, const double* d_x, int64_t rows, int64_t cols,
                                               const std::string& label, GramEigensolver solver);
std::vector<double> gesvd_values_on_device(CudaContext& ctx, double* d_x, int64_t rows, int64_t cols,
                                           const std::string& label);

/// Device bytes a call needs, workspace included (a generous estimate used to bound memory).
size_t gram_device_bytes(int64_t rows, int64_t cols);
size_t svd_device_bytes(int64_t rows, int64_t cols);

}  // namespace muspec::cuda
