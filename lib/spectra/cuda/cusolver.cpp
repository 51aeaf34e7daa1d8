#include "spectra/cuda/cusolver.h"

#include <lapacke.h>

#include <algorithm>

#include "core/error.h"

namespace muspec::cuda {

namespace {

constexpr size_t kDouble = sizeof(double);

/// The one path every cuSOLVER routine takes: ask for the workspace sizes, provide them (device
/// and host), run, then read `info` back and turn a non-zero value into a named error.
template <class Query, class Call>
void run_solver(CudaContext& ctx, const std::string& routine, const std::string& label, Query query, Call call) {
  size_t device_bytes = 0, host_bytes = 0;
  check(query(&device_bytes, &host_bytes), (routine + "_bufferSize").c_str());
  void* device_work = ctx.workspace.reserve(device_bytes);
  if (ctx.host_workspace.size() < host_bytes) ctx.host_workspace.resize(host_bytes);
  void* host_work = host_bytes ? ctx.host_workspace.data() : nullptr;
  int* d_info = static_cast<int*>(ctx.info.reserve(sizeof(int)));
  check(call(device_work, device_bytes, host_work, host_bytes, d_info), routine.c_str());
  int info = 0;
  check(cudaMemcpyAsync(&info, d_info, sizeof info, cudaMemcpyDeviceToHost, ctx.stream()), "cudaMemcpyAsync (info)");
  ctx.synchronize();
  if (info < 0) throw NumericalError(label + ": " + routine + ": argument " + std::to_string(-info) + " is invalid (a muspec bug)");
  if (info > 0)
    throw NumericalError(label + ": " + routine + " did not converge (info = " + std::to_string(info) +
                         "); try --method svd or --device cpu");
}

std::vector<double> download(CudaContext& ctx, const void* src, int64_t count) {
  std::vector<double> out(static_cast<size_t>(count));
  check(cudaMemcpyAsync(out.data(), src, out.size() * kDouble, cudaMemcpyDeviceToHost, ctx.stream()),
        "cudaMemcpyAsync (values)");
  ctx.synchronize();
  return out;
}

/// Uploads the row-major rows x cols matrix; on the device it reads as the column-major
/// cols x rows matrix M = xᵀ with leading dimension cols.
double* upload_matrix(CudaContext& ctx, const double* x, int64_t rows, int64_t cols) {
  const size_t bytes = static_cast<size_t>(rows) * static_cast<size_t>(cols) * kDouble;
  auto* m = static_cast<double*>(ctx.matrix.reserve(bytes));
  ctx.upload(m, x, bytes);
  return m;
}

}  // namespace

size_t gram_device_bytes(int64_t rows, int64_t cols) {
  const size_t n = static_cast<size_t>(std::min(rows, cols));
  const size_t mn = static_cast<size_t>(rows) * static_cast<size_t>(cols);
  // matrix + Gram + eigenvalues + syevd workspace (at most about one more n x n, measured below that)
  return (mn + 2 * n * n + 3 * n) * kDouble + (size_t{16} << 20);
}

size_t svd_device_bytes(int64_t rows, int64_t cols) {
  const size_t n = static_cast<size_t>(std::min(rows, cols));
  const size_t mn = static_cast<size_t>(rows) * static_cast<size_t>(cols);
  // matrix + transposed copy + values + gesvd workspace (bidiagonal work of order (m + n) nb)
  return (2 * mn + n) * kDouble + (size_t{64} << 20);
}

std::vector<double> gram_eigenvalues(CudaContext& ctx, const double* x, int64_t rows, int64_t cols,
                                     const std::string& label, GramEigensolver solver) {
  return gram_eigenvalues_on_device(ctx, upload_matrix(ctx, x, rows, cols), rows, cols, label, solver);
}

std::vector<double> gesvd_values(CudaContext& ctx, const double* x, int64_t rows, int64_t cols,
                                 const std::string& label) {
  return gesvd_values_on_device(ctx, upload_matrix(ctx, x, rows, cols), rows, cols, label);
}

namespace {

/// Eigenvalues of the lower triangle of the n x n matrix g (destroyed), ascending.
std::vector<double> symmetric_eigenvalues(CudaContext& ctx, double* g, int64_t n, GramEigensolver solver,
                                          const std::string& label) {
  cusolverDnHandle_t h = ctx.cusolver();
  if (solver == GramEigensolver::SytrdSterf) {
    // Tridiagonal reduction on the GPU, then the O(n²) values-only QL/QR (dsterf) on this host
    // thread while the other streams keep the GPU busy.
    auto* d = static_cast<double*>(ctx.values.reserve(static_cast<size_t>(3 * n) * kDouble));
    double *e = d + n, *tau = d + 2 * n;
    const int ni = static_cast<int>(n);  // n <= 46341: a matrix has at most 2^31 elements
    run_solver(
        ctx, "cusolverDnDsytrd", label,
        [&](size_t* dev, size_t* host) {
          int lwork = 0;
          const cusolverStatus_t st = cusolverDnDsytrd_bufferSize(h, CUBLAS_FILL_MODE_LOWER, ni, g, ni, d, e, tau, &lwork);
          *dev = static_cast<size_t>(lwork) * kDouble, *host = 0;
          return st;
        },
        [&](void* dw, size_t db, void*, size_t, int* info) {
          return cusolverDnDsytrd(h, CUBLAS_FILL_MODE_LOWER, ni, g, ni, d, e, tau, static_cast<double*>(dw),
                                  static_cast<int>(db / kDouble), info);
        });
    std::vector<double> de = download(ctx, d, 2 * n);
    const lapack_int info = LAPACKE_dsterf(ni, de.data(), de.data() + n);
    if (info != 0)
      throw NumericalError(label + ": dsterf did not converge (info = " + std::to_string(info) + "); try --method svd");
    de.resize(static_cast<size_t>(n));
    return de;
  }
  auto* w = static_cast<double*>(ctx.values.reserve(static_cast<size_t>(n) * kDouble));
  cusolverDnParams_t p = ctx.solver_params();
  run_solver(
      ctx, "cusolverDnXsyevd", label,
      [&](size_t* dev, size_t* host) {
        return cusolverDnXsyevd_bufferSize(h, p, CUSOLVER_EIG_MODE_NOVECTOR, CUBLAS_FILL_MODE_LOWER, n, CUDA_R_64F, g, n,
                                           CUDA_R_64F, w, CUDA_R_64F, dev, host);
      },
      [&](void* dw, size_t db, void* hw, size_t hb, int* info) {
        return cusolverDnXsyevd(h, p, CUSOLVER_EIG_MODE_NOVECTOR, CUBLAS_FILL_MODE_LOWER, n, CUDA_R_64F, g, n, CUDA_R_64F,
                                w, CUDA_R_64F, dw, db, hw, hb, info);
      });
  return download(ctx, w, n);
}

}  // namespace

std::vector<double> gram_eigenvalues_on_device(CudaContext& ctx, const double* m, int64_t rows, int64_t cols,
                                               const std::string& label, GramEigensolver solver) {
  const int64_t n = std::min(rows, cols), k = std::max(rows, cols);
  auto* g = static_cast<double*>(ctx.gram.reserve(static_cast<size_t>(n * n) * kDouble));
  const double one = 1.0, zero = 0.0;
  // rows <= cols: G = x xᵀ = Mᵀ M; rows > cols: G = xᵀ x = M Mᵀ. Lower triangle, float64.
  const cublasOperation_t trans = rows <= cols ? CUBLAS_OP_T : CUBLAS_OP_N;
  check(cublasDsyrk_64(ctx.cublas(), CUBLAS_FILL_MODE_LOWER, trans, n, k, &one, m, cols, &zero, g, n),
        "cublasDsyrk");
  return symmetric_eigenvalues(ctx, g, n, solver, label);
}

std::vector<double> gesvd_values_on_device(CudaContext& ctx, double* a, int64_t rows, int64_t cols,
                                           const std::string& label) {
  int64_t m = cols, n = rows;  // M = xᵀ is cols x rows, column-major
  if (m < n) {                 // gesvd needs m >= n: use Mᵀ = x (rows x cols, column-major)
    auto* t = static_cast<double*>(ctx.transposed.reserve(static_cast<size_t>(rows * cols) * kDouble));
    const double one = 1.0, zero = 0.0;
    check(cublasDgeam_64(ctx.cublas(), CUBLAS_OP_T, CUBLAS_OP_N, rows, cols, &one, a, cols, &zero, t, rows, t, rows),
          "cublasDgeam (transpose)");
    a = t;
    std::swap(m, n);
  }
  auto* s = static_cast<double*>(ctx.values.reserve(static_cast<size_t>(n) * kDouble));
  cusolverDnHandle_t h = ctx.cusolver();
  cusolverDnParams_t p = ctx.solver_params();
  signed char none = 'N';
  run_solver(
      ctx, "cusolverDnXgesvd", label,
      [&](size_t* dev, size_t* host) {
        return cusolverDnXgesvd_bufferSize(h, p, none, none, m, n, CUDA_R_64F, a, m, CUDA_R_64F, s, CUDA_R_64F, nullptr,
                                           m, CUDA_R_64F, nullptr, n, CUDA_R_64F, dev, host);
      },
      [&](void* dw, size_t db, void* hw, size_t hb, int* info) {
        return cusolverDnXgesvd(h, p, none, none, m, n, CUDA_R_64F, a, m, CUDA_R_64F, s, CUDA_R_64F, nullptr, m,
                                CUDA_R_64F, nullptr, n, CUDA_R_64F, dw, db, hw, hb, info);
      });
  return download(ctx, s, n);
}

}  // namespace muspec::cuda
