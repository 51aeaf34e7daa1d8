// The Newton–Schulz iteration on the GPU with cuBLAS, as Muon kernels run it: bf16 storage with
// float32 accumulation (or float32 / float64 throughout), for comparison with the scalar map
// (`muspec ns simulate --device cuda`).
//
// Each step is three GEMMs on column-major X (p x q, p <= q):
//   A = X Xᵀ;  B = c·A·A + b·A;  X ← B·X + a·X
// (a cubic step, c = 0, skips the middle product: X ← b·A·X + a·X). cuBLAS applies α and β in
// float32 inside each GEMM and rounds to the storage type once, where PyTorch's kernels round
// the element-wise sums separately: the bf16 results differ from them by about one rounding.
#include <cmath>
#include <cstring>

#include "core/dtype.h"
#include "core/error.h"
#include "spectra/cuda/cuda_context.h"
#include "spectra/cuda/entry_points.h"

namespace muspec {

namespace {

struct Layout {
  cudaDataType_t type;
  cublasComputeType_t compute;
  size_t bytes;
};

Layout layout_of(GpuPrecision p) {
  switch (p) {
    case GpuPrecision::F64: return {CUDA_R_64F, CUBLAS_COMPUTE_64F, 8};
    case GpuPrecision::F32: return {CUDA_R_32F, CUBLAS_COMPUTE_32F, 4};
    case GpuPrecision::BF16: return {CUDA_R_16BF, CUBLAS_COMPUTE_32F, 2};
  }
  throw UsageError("unknown GPU precision");
}

void encode(double v, GpuPrecision p, char* out) {
  if (p == GpuPrecision::F64) std::memcpy(out, &v, 8);
  const float f = static_cast<float>(v);
  if (p == GpuPrecision::F32) std::memcpy(out, &f, 4);
  if (p == GpuPrecision::BF16) {
    const uint16_t h = float_to_bf16(f);
    std::memcpy(out, &h, 2);
  }
}

double decode(const char* in, GpuPrecision p) {
  if (p == GpuPrecision::F64) {
    double d;
    std::memcpy(&d, in, 8);
    return d;
  }
  if (p == GpuPrecision::F32) {
    float f;
    std::memcpy(&f, in, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, in, 2);
  return bf16_to_double(h);
}

/// C = alpha·op(A)·op(B) + beta·C with scalars in the compute type.
void gemm(cuda::CudaContext& ctx, const Layout& L, cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n,
          int64_t k, double alpha, const void* a, int64_t lda, const void* b, int64_t ldb, double beta, void* c,
          int64_t ldc) {
  const float fa = static_cast<float>(alpha), fb = static_cast<float>(beta);
  const void* pa = L.compute == CUBLAS_COMPUTE_64F ? static_cast<const void*>(&alpha) : &fa;
  const void* pb = L.compute == CUBLAS_COMPUTE_64F ? static_cast<const void*>(&beta) : &fb;
  cuda::check(cublasGemmEx_64(ctx.cublas(), ta, tb, m, n, k, pa, a, L.type, lda, b, L.type, ldb, pb, c, L.type, ldc,
                              L.compute, CUBLAS_GEMM_DEFAULT),
              "cublasGemmEx");
}

void copy(cuda::CudaContext& ctx, void* dst, const void* src, size_t bytes) {
  cuda::check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx.stream()), "cudaMemcpyAsync (d2d)");
}

}  // namespace

std::vector<double> cuda::newton_schulz(const std::vector<std::array<double, 3>>& steps, double delta, double epsilon,
                                        GpuPrecision precision, const double* g, int64_t rows, int64_t cols) {
  if (cuda::devices_present() == 0) throw NotAvailableError("--device cuda: no CUDA device found");
  const Layout L = layout_of(precision);
  const bool flip = rows > cols;  // work on X with p <= q rows
  const int64_t p = flip ? cols : rows, q = flip ? rows : cols;
  const size_t n = static_cast<size_t>(p * q);
  double sumsq = 0.0;
  for (size_t i = 0; i < n; ++i) sumsq += g[i] * g[i];
  const double scale = 1.0 / (std::sqrt(sumsq) * (1.0 + delta) + epsilon);

  // Column-major X (p x q): X(i, j) = G(i, j), or Gᵀ(i, j) when flipped.
  std::vector<char> host(n * L.bytes);
  for (int64_t j = 0; j < q; ++j)
    for (int64_t i = 0; i < p; ++i) {
      const double v = flip ? g[j * cols + i] : g[i * cols + j];
      encode(v * scale, precision, &host[static_cast<size_t>(i + j * p) * L.bytes]);
    }

  cuda::CudaContext ctx(0);
  void* x = ctx.matrix.reserve(n * L.bytes);
  void* xn = ctx.transposed.reserve(n * L.bytes);
  void* a = ctx.gram.reserve(static_cast<size_t>(p * p) * L.bytes);
  void* b = ctx.workspace.reserve(static_cast<size_t>(p * p) * L.bytes);
  ctx.upload(x, host.data(), host.size());
  for (const auto& s : steps) {
    gemm(ctx, L, CUBLAS_OP_N, CUBLAS_OP_T, p, p, q, 1.0, x, p, x, p, 0.0, a, p);  // A = X Xᵀ
    copy(ctx, xn, x, n * L.bytes);
    if (s[2] != 0.0) {
      copy(ctx, b, a, static_cast<size_t>(p * p) * L.bytes);
      gemm(ctx, L, CUBLAS_OP_N, CUBLAS_OP_N, p, p, p, s[2], a, p, a, p, s[1], b, p);  // B = cA² + bA
      gemm(ctx, L, CUBLAS_OP_N, CUBLAS_OP_N, p, q, p, 1.0, b, p, x, p, s[0], xn, p);  // X' = BX + aX
    } else {
      gemm(ctx, L, CUBLAS_OP_N, CUBLAS_OP_N, p, q, p, s[1], a, p, x, p, s[0], xn, p);  // X' = bAX + aX
    }
    std::swap(x, xn);
  }
  cuda::check(cudaMemcpyAsync(host.data(), x, host.size(), cudaMemcpyDeviceToHost, ctx.stream()), "cudaMemcpyAsync");
  ctx.synchronize();

  std::vector<double> out(n);
  for (int64_t j = 0; j < q; ++j)
    for (int64_t i = 0; i < p; ++i) {
      const double v = decode(&host[static_cast<size_t>(i + j * p) * L.bytes], precision);
      out[static_cast<size_t>(flip ? j * cols + i : i * cols + j)] = v;
    }
  return out;
}

}  // namespace muspec
