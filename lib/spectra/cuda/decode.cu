// Device-side decoding of stored tensor bytes to float64 (see decode.h).
//
// One grid-stride kernel per stored type widens each element to float64, applies the input
// transform, counts NaN/Inf entries and sums the squares of the finite ones. Every block
// writes its partial sums to its own slot; the host adds the slots in block order, so ‖X‖_F
// is the same on every run (no floating-point atomics).
#include "spectra/cuda/decode.h"

#include <cuda_fp16.h>

#include <cmath>
#include <vector>

namespace muspec::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kMaxBlocks = 1024;

struct Partial {
  double sum_squares;
  unsigned long long nonfinite;
};

__device__ inline double widen(const double* p, int64_t i) { return p[i]; }
__device__ inline double widen(const float* p, int64_t i) { return p[i]; }
__device__ inline double widen(const __half* p, int64_t i) { return __half2float(p[i]); }
__device__ inline double widen(const uint16_t* p, int64_t i) {  // bfloat16: the top half of a float32
  return __uint_as_float(static_cast<unsigned>(p[i]) << 16);
}

template <class Stored>
__global__ void decode_kernel(const Stored* in, int64_t count, bool sign, double* out, Partial* partials) {
  double sum = 0.0;
  unsigned long long bad = 0;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    double x = widen(in, i);
    if (!isfinite(x)) {
      ++bad;
    } else {
      if (sign) x = static_cast<double>((x > 0) - (x < 0));
      sum += x * x;
    }
    out[i] = x;
  }
  // Block reduction: warp shuffles, then one value per warp through shared memory.
  for (int offset = 16; offset > 0; offset /= 2) {
    sum += __shfl_down_sync(0xffffffffu, sum, offset);
    bad += __shfl_down_sync(0xffffffffu, bad, offset);
  }
  __shared__ double warp_sum[kThreads / 32];
  __shared__ unsigned long long warp_bad[kThreads / 32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) {
    warp_sum[warp] = sum;
    warp_bad[warp] = bad;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    Partial p{0.0, 0};
    for (int w = 0; w < kThreads / 32; ++w) {
      p.sum_squares += warp_sum[w];
      p.nonfinite += warp_bad[w];
    }
    partials[blockIdx.x] = p;
  }
}

template <class Stored>
void launch(const void* d_stored, int64_t count, bool sign, double* d_out, Partial* d_partials, int blocks,
            cudaStream_t stream) {
  decode_kernel<Stored><<<blocks, kThreads, 0, stream>>>(static_cast<const Stored*>(d_stored), count, sign, d_out,
                                                          d_partials);
}

std::optional<StoredType> stored_type(DType t) {
  switch (t) {
    case DType::F64: return StoredType::F64;
    case DType::F32: return StoredType::F32;
    case DType::F16: return StoredType::F16;
    case DType::BF16: return StoredType::BF16;
    default: return std::nullopt;
  }
}

}  // namespace

std::optional<StoredLayout> device_layout(const MatrixView& m) {
  const auto type = stored_type(m.dtype);
  if (!type || m.byte_order != ByteOrder::Little || m.rows <= 0 || m.cols <= 0) return std::nullopt;
  StoredLayout l;
  l.type = *type;
  l.element_bytes = static_cast<int>(dtype_bits(m.dtype) / 8);
  // Row-major (safetensors, C-order .npy, a slice of a stack); a single row or column is
  // contiguous whatever its other stride says.
  if ((m.col_stride == 1 || m.cols == 1) && (m.row_stride == m.cols || m.rows == 1)) {
    l.rows = m.rows, l.cols = m.cols;
    return l;
  }
  if (m.row_stride == 1 && m.col_stride == m.rows) {  // column-major (Fortran-order .npy): xᵀ row-major
    l.rows = m.cols, l.cols = m.rows;
    return l;
  }
  return std::nullopt;
}

DenseConversion decode_on_device(CudaContext& ctx, const void* d_stored, const StoredLayout& layout,
                                 InputTransform transform, double* d_out) {
  const int64_t count = layout.rows * layout.cols;
  const int blocks = static_cast<int>(std::min<int64_t>(kMaxBlocks, (count + kThreads - 1) / kThreads));
  auto* d_partials = static_cast<Partial*>(ctx.partials.reserve(sizeof(Partial) * kMaxBlocks));
  const bool sign = transform == InputTransform::Sign;
  switch (layout.type) {
    case StoredType::F64: launch<double>(d_stored, count, sign, d_out, d_partials, blocks, ctx.stream()); break;
    case StoredType::F32: launch<float>(d_stored, count, sign, d_out, d_partials, blocks, ctx.stream()); break;
    case StoredType::F16: launch<__half>(d_stored, count, sign, d_out, d_partials, blocks, ctx.stream()); break;
    case StoredType::BF16: launch<uint16_t>(d_stored, count, sign, d_out, d_partials, blocks, ctx.stream()); break;
  }
  check(cudaGetLastError(), "decode kernel launch");
  std::vector<Partial> partials(static_cast<size_t>(blocks));
  check(cudaMemcpyAsync(partials.data(), d_partials, sizeof(Partial) * partials.size(), cudaMemcpyDeviceToHost,
                        ctx.stream()),
        "cudaMemcpyAsync (decode sums)");
  ctx.synchronize();
  DenseConversion r;
  double sum = 0.0;
  for (const Partial& p : partials) {
    sum += p.sum_squares;
    r.nonfinite += static_cast<int64_t>(p.nonfinite);
  }
  r.frobenius = std::sqrt(sum);
  return r;
}

}  // namespace muspec::cuda
