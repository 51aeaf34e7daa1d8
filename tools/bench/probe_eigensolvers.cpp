// Eigensolver probe for the CUDA backend's gram route (built only with CUDA): on the same
// float64 Gram matrices, how long do the candidate cuSOLVER routes take?
//
//   muspec_probe_eigensolvers [N:BATCH ...]     (default 1024:32 4096:5 8192:2)
//
// For each N x N Gram matrix (G = AᵀA of a random 2N x N matrix, values only) and BATCH copies:
//   syevd_one      one cusolverDnXsyevd call
//   syevd_serial   BATCH Xsyevd calls one after another on one stream
//   syevd_streams  BATCH Xsyevd calls at once, one host thread + stream + handle each
//   syev_batched   one cusolverDnXsyevBatched call over the BATCH matrices (n·lda·batch < 2^31)
//   sytrd          cusolverDnDsytrd alone (the GPU tridiagonal reduction inside syevd)
//   sterf_host     LAPACK dsterf on the host on that tridiagonal matrix (values only)
//   dsyrk          the float64 Gram product itself, for scale
// and the largest relative difference between the sytrd+sterf and the syevd eigenvalues.
// Prints one JSON line per N. This is a measurement tool for choosing the backend's route
// (docs/benchmarks.md, "GPU"), not part of muspec.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include <lapacke.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

void ok(cudaError_t s, const char* what) {
  if (s != cudaSuccess) { std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(s)); std::exit(2); }
}
void ok(cusolverStatus_t s, const char* what) {
  if (s != CUSOLVER_STATUS_SUCCESS) { std::fprintf(stderr, "%s: cuSOLVER status %d\n", what, static_cast<int>(s)); std::exit(2); }
}
void ok(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) { std::fprintf(stderr, "%s: cuBLAS status %d\n", what, static_cast<int>(s)); std::exit(2); }
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// One solver: stream, handles, workspace.
struct Solver {
  cudaStream_t stream{};
  cusolverDnHandle_t h{};
  cusolverDnParams_t p{};
  void* work = nullptr;
  size_t work_bytes = 0;
  std::vector<char> host;
  int* info = nullptr;
  Solver(const Solver&) = delete;
  Solver& operator=(const Solver&) = delete;
  Solver() {
    ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
    ok(cusolverDnCreate(&h), "cusolverDnCreate");
    ok(cusolverDnSetStream(h, stream), "cusolverDnSetStream");
    ok(cusolverDnCreateParams(&p), "params");
    ok(cudaMalloc(&info, sizeof(int) * 4096), "info");
  }
  ~Solver() {
    cudaFree(work), cudaFree(info);
    cusolverDnDestroyParams(p), cusolverDnDestroy(h), cudaStreamDestroy(stream);
  }
  void reserve(size_t dev, size_t hst) {
    if (dev > work_bytes) { cudaFree(work); ok(cudaMalloc(&work, dev), "workspace"); work_bytes = dev; }
    if (hst > host.size()) host.resize(hst);
  }
  /// Exits naming the routine when any of the first `count` info values is not 0: a failed
  /// solve must not be timed as if it had succeeded.
  void check_info(const char* what, int64_t count = 1) {
    std::vector<int> got(static_cast<size_t>(count));
    ok(cudaMemcpy(got.data(), info, sizeof(int) * got.size(), cudaMemcpyDeviceToHost), "download info");
    for (size_t i = 0; i < got.size(); ++i)
      if (got[i] != 0) { std::fprintf(stderr, "%s: info[%zu] = %d\n", what, i, got[i]); std::exit(2); }
  }
  /// Values of the n x n matrix `a` (destroyed) into `w`, synchronously.
  void syevd(double* a, double* w, int64_t n) {
    size_t dev = 0, hst = 0;
    ok(cusolverDnXsyevd_bufferSize(h, p, CUSOLVER_EIG_MODE_NOVECTOR, CUBLAS_FILL_MODE_LOWER, n, CUDA_R_64F, a, n,
                                   CUDA_R_64F, w, CUDA_R_64F, &dev, &hst), "Xsyevd_bufferSize");
    reserve(dev, hst);
    ok(cusolverDnXsyevd(h, p, CUSOLVER_EIG_MODE_NOVECTOR, CUBLAS_FILL_MODE_LOWER, n, CUDA_R_64F, a, n, CUDA_R_64F, w,
                        CUDA_R_64F, work, dev, host.data(), hst, info), "Xsyevd");
    ok(cudaStreamSynchronize(stream), "sync");
    check_info("Xsyevd");
  }
  void syev_batched(double* a, double* w, int64_t n, int64_t batch) {
    size_t dev = 0, hst = 0;
    ok(cusolverDnXsyevBatched_bufferSize(h, p, CUSOLVER_EIG_MODE_NOVECTOR, CUBLAS_FILL_MODE_LOWER, n, CUDA_R_64F, a, n,
                                         CUDA_R_64F, w, CUDA_R_64F, &dev, &hst, batch), "XsyevBatched_bufferSize");
    reserve(dev, hst);
    ok(cusolverDnXsyevBatched(h, p, CUSOLVER_EIG_MODE_NOVECTOR, CUBLAS_FILL_MODE_LOWER, n, CUDA_R_64F, a, n, CUDA_R_64F,
                              w, CUDA_R_64F, work, dev, host.data(), hst, info, batch), "XsyevBatched");
    ok(cudaStreamSynchronize(stream), "sync");
    check_info("XsyevBatched", batch);
  }
};

void probe(int64_t n, int64_t batch) {
  const int64_t k = 2 * n;
  const size_t nn = static_cast<size_t>(n * n);
  std::vector<double> a(static_cast<size_t>(k * n));
  std::mt19937_64 rng(static_cast<uint64_t>(n));
  std::normal_distribution<double> gauss;
  for (double& v : a) v = gauss(rng);
  double *d_a, *d_g, *d_copies, *d_w;
  ok(cudaMalloc(&d_a, a.size() * sizeof(double)), "A");
  ok(cudaMalloc(&d_g, nn * sizeof(double)), "G");
  ok(cudaMalloc(&d_copies, nn * batch * sizeof(double)), "copies");
  ok(cudaMalloc(&d_w, static_cast<size_t>(n * batch) * sizeof(double)), "W");
  ok(cudaMemcpy(d_a, a.data(), a.size() * sizeof(double), cudaMemcpyHostToDevice), "upload");
  cublasHandle_t blas;
  ok(cublasCreate(&blas), "cublasCreate");
  const double one = 1, zero = 0;
  ok(cublasDsyrk_64(blas, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_T, n, k, &one, d_a, k, &zero, d_g, n), "dsyrk");  // warm-up
  ok(cudaDeviceSynchronize(), "sync");
  auto t0 = std::chrono::steady_clock::now();
  ok(cublasDsyrk_64(blas, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_T, n, k, &one, d_a, k, &zero, d_g, n), "dsyrk");
  ok(cudaDeviceSynchronize(), "sync");
  const double t_syrk = seconds_since(t0);
  auto refill = [&] {
    for (int64_t b = 0; b < batch; ++b) ok(cudaMemcpy(d_copies + b * nn, d_g, nn * sizeof(double), cudaMemcpyDeviceToDevice), "copy");
    ok(cudaDeviceSynchronize(), "sync");
  };
  std::vector<Solver> solvers(static_cast<size_t>(batch));
  refill();
  solvers[0].syevd(d_copies, d_w, n);  // warm-up (library load, workspace)
  refill();
  t0 = std::chrono::steady_clock::now();
  solvers[0].syevd(d_copies, d_w, n);
  const double t_one = seconds_since(t0);
  refill();
  t0 = std::chrono::steady_clock::now();
  for (int64_t b = 0; b < batch; ++b) solvers[0].syevd(d_copies + b * nn, d_w + b * n, n);
  const double t_serial = seconds_since(t0);
  for (int64_t b = 1; b < batch; ++b) {  // warm every solver's workspace first
    refill();
    solvers[static_cast<size_t>(b)].syevd(d_copies + b * nn, d_w + b * n, n);
  }
  refill();
  t0 = std::chrono::steady_clock::now();
  {
    std::vector<std::thread> threads;
    for (int64_t b = 0; b < batch; ++b)
      threads.emplace_back([&, b] { solvers[static_cast<size_t>(b)].syevd(d_copies + b * nn, d_w + b * n, n); });
    for (auto& t : threads) t.join();
  }
  const double t_streams = seconds_since(t0);
  double t_batched = -1;
  if (static_cast<double>(n) * n * batch < 2147483647.0) {
    refill();
    solvers[0].syev_batched(d_copies, d_w, n, batch);  // warm-up
    refill();
    t0 = std::chrono::steady_clock::now();
    solvers[0].syev_batched(d_copies, d_w, n, batch);
    t_batched = seconds_since(t0);
  }
  // The reduction alone, then the tridiagonal values on the host.
  refill();
  double *d_d, *d_e, *d_tau;
  ok(cudaMalloc(&d_d, n * sizeof(double)), "d"), ok(cudaMalloc(&d_e, n * sizeof(double)), "e");
  ok(cudaMalloc(&d_tau, n * sizeof(double)), "tau");
  int lwork = 0;
  ok(cusolverDnDsytrd_bufferSize(solvers[0].h, CUBLAS_FILL_MODE_LOWER, static_cast<int>(n), d_copies, static_cast<int>(n),
                                 d_d, d_e, d_tau, &lwork), "Dsytrd_bufferSize");
  solvers[0].reserve(static_cast<size_t>(lwork) * sizeof(double), 0);
  auto sytrd = [&] {
    ok(cusolverDnDsytrd(solvers[0].h, CUBLAS_FILL_MODE_LOWER, static_cast<int>(n), d_copies, static_cast<int>(n), d_d,
                        d_e, d_tau, static_cast<double*>(solvers[0].work), lwork, solvers[0].info), "Dsytrd");
    ok(cudaStreamSynchronize(solvers[0].stream), "sync");
    solvers[0].check_info("Dsytrd");
  };
  sytrd();  // warm-up
  refill();
  t0 = std::chrono::steady_clock::now();
  sytrd();
  const double t_sytrd = seconds_since(t0);
  std::vector<double> d(static_cast<size_t>(n)), e(static_cast<size_t>(n)), w(static_cast<size_t>(n));
  ok(cudaMemcpy(d.data(), d_d, n * sizeof(double), cudaMemcpyDeviceToHost), "download d");
  ok(cudaMemcpy(e.data(), d_e, n * sizeof(double), cudaMemcpyDeviceToHost), "download e");
  ok(cudaMemcpy(w.data(), d_w, n * sizeof(double), cudaMemcpyDeviceToHost), "download w");  // syevd's (first matrix)
  t0 = std::chrono::steady_clock::now();
  const int sterf_info = LAPACKE_dsterf(static_cast<int>(n), d.data(), e.data());
  const double t_sterf = seconds_since(t0);
  double diff = sterf_info == 0 ? 0.0 : -1.0;
  std::sort(d.begin(), d.end());
  for (int64_t i = 0; sterf_info == 0 && i < n; ++i)
    diff = std::max(diff, std::fabs(d[i] - w[i]) / std::max(std::fabs(w[i]), 1e-300 + std::fabs(w[n - 1]) * 1e-12));
  cudaFree(d_d), cudaFree(d_e), cudaFree(d_tau);
  std::printf("{\"n\": %lld, \"sytrd_s\": %.4f, \"sterf_host_s\": %.4f, \"sytrd_sterf_vs_syevd\": %.2e}\n",
              static_cast<long long>(n), t_sytrd, t_sterf, diff);
  std::printf("{\"n\": %lld, \"batch\": %lld, \"dsyrk_2n_s\": %.4f, \"syevd_one_s\": %.4f, \"syevd_serial_s\": %.4f, "
              "\"syevd_streams_s\": %.4f, \"syev_batched_s\": %.4f}\n",
              static_cast<long long>(n), static_cast<long long>(batch), t_syrk, t_one, t_serial, t_streams, t_batched);
  std::fflush(stdout);
  solvers.clear();
  cublasDestroy(blas);
  cudaFree(d_a), cudaFree(d_g), cudaFree(d_copies), cudaFree(d_w);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> specs(argv + 1, argv + argc);
  if (specs.empty()) specs = {"1024:32", "4096:5", "8192:2"};
  for (const std::string& s : specs) {
    const size_t colon = s.find(':');
    const long long n = std::atoll(s.substr(0, colon).c_str());
    const long long batch = colon == std::string::npos ? 4 : std::atoll(s.substr(colon + 1).c_str());
    if (n < 1 || batch < 1 || batch > 4096) { std::fprintf(stderr, "bad spec %s (N:BATCH, BATCH <= 4096)\n", s.c_str()); return 2; }
    probe(n, batch);
  }
  return 0;
}
