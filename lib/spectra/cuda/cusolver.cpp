#include "spectra/cuda/cusolver.h"

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
  return (mn + 2 * n * n + n) * kDouble + (size_t{16} << 20);
}

size_t svd_device_bytes(int64_t rows, int64_t cols) {
  const size_t n = static_cast<size_t>(std::min(rows, cols));
  const size_t mn = static_cast<size_t>(rows) * static_cast<size_t>(cols);
  // matrix + transposed copy + values + gesvd workspace (bidiagonal work of order (m + n) nb)
  return (2 * mn + n) * kDouble + (size_t{64} << 20);
}

std::vector<double> gram_eigenvalues(CudaContext& ctx, const double* x, int64_t rows, int64_t cols,
                                     const std::string& label) {
  const double* m = upload_matrix(ctx, x, rows, cols);
  const int64_t n = std::min(rows, cols), k = std::max(rows, cols);
  auto* g = static_cast<double*>(ctx.gram.reserve(static_cast<size_t>(n * n) * kDouble));
  auto* w = static_cast<double*>(ctx.values.reserve(static_cast<size_t>(n) * kDouble));
  const double one = 1.0, zero = 0.0;
  // rows <= cols: G = x xᵀ = Mᵀ M; rows > cols: G = xᵀ x = M Mᵀ. Lower triangle, float64.
  const cublasOperation_t trans = rows <= cols ? CUBLAS_OP_T : CUBLAS_OP_N;
  check(cublasDsyrk_64(ctx.cublas(), CUBLAS_FILL_MODE_LOWER, trans, n, k, &one, m, cols, &zero, g, n),
        "cublasDsyrk");
  cusolverDnHandle_t h = ctx.cusolver();
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

std::vector<double> gesvd_values(CudaContext& ctx, const double* x, int64_t rows, int64_t cols,
                                 const std::string& label) {
  double* a = upload_matrix(ctx, x, rows, cols);
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
