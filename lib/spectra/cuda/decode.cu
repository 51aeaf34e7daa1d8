// Device-side decoding of stored tensor bytes to float64 (see decode.h).
//
// One grid-stride kernel per stored type widens each element to float64, applies the input
// transform, counts NaN/Inf entries and sums the squares of the finite ones; the per-element
// rules are decode_elements.h's, which the host tests run too. Every block writes its partial
// sums to its own slot; the host adds the slots in block order, so ‖X‖_F is the same on every
// run (no floating-point atomics).
#include "spectra/cuda/decode.h"

#include <cmath>
#include <vector>

namespace muspec::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kMaxBlocks = 1024;

template <class Stored>
__global__ void decode_kernel(const Stored* in, int64_t count, bool sign, double* out, DecodeSums* partials) {
  DecodeSums sums;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride)
    out[i] = decode_element(widen(in[i]), sign, sums);
  // Block reduction: warp shuffles, then one value per warp through shared memory.
  double sum = sums.sum_squares;
  unsigned long long bad = sums.nonfinite;
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
    DecodeSums block;
    for (int w = 0; w < kThreads / 32; ++w) {
      block.sum_squares += warp_sum[w];
      block.nonfinite += warp_bad[w];
    }
    partials[blockIdx.x] = block;
  }
}

template <class Stored>
void launch(const void* d_stored, int64_t count, bool sign, double* d_out, DecodeSums* d_partials, int blocks,
            cudaStream_t stream) {
  decode_kernel<Stored><<<blocks, kThreads, 0, stream>>>(static_cast<const Stored*>(d_stored), count, sign, d_out,
                                                          d_partials);
}

}  // namespace

DenseConversion decode_on_device(CudaContext& ctx, const void* d_stored, const StoredLayout& layout,
                                 InputTransform transform, double* d_out) {
  const int64_t count = layout.rows * layout.cols;
  const int blocks = static_cast<int>(std::min<int64_t>(kMaxBlocks, (count + kThreads - 1) / kThreads));
  auto* d_partials = static_cast<DecodeSums*>(ctx.partials.reserve(sizeof(DecodeSums) * kMaxBlocks));
  const bool sign = transform == InputTransform::Sign;
  (void)cudaGetLastError();  // clear an error left by an earlier call, so the check below is this launch's
  switch (layout.type) {
    case StoredType::F64: launch<double>(d_stored, count, sign, d_out, d_partials, blocks, ctx.stream()); break;
    case StoredType::F32: launch<float>(d_stored, count, sign, d_out, d_partials, blocks, ctx.stream()); break;
    case StoredType::F16: launch<F16Bits>(d_stored, count, sign, d_out, d_partials, blocks, ctx.stream()); break;
    case StoredType::BF16: launch<BF16Bits>(d_stored, count, sign, d_out, d_partials, blocks, ctx.stream()); break;
  }
  check(cudaGetLastError(), "decode kernel launch");
  std::vector<DecodeSums> partials(static_cast<size_t>(blocks));
  check(cudaMemcpyAsync(partials.data(), d_partials, sizeof(DecodeSums) * partials.size(), cudaMemcpyDeviceToHost,
                        ctx.stream()),
        "cudaMemcpyAsync (decode sums)");
  ctx.synchronize();
  DenseConversion r;
  double sum = 0.0;
  for (const DecodeSums& p : partials) {
    sum += p.sum_squares;
    r.nonfinite += static_cast<int64_t>(p.nonfinite);
  }
  r.frobenius = std::sqrt(sum);
  return r;
}

}  // namespace muspec::cuda
