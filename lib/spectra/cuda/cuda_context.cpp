#include "spectra/cuda/cuda_context.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "core/error.h"

namespace muspec::cuda {

namespace {
constexpr size_t kStagingBytes = size_t{32} << 20;  // per pinned buffer; two per context

const char* cublas_status_text(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "cuBLAS error";
  }
}

const char* cusolver_status_text(cusolverStatus_t s) {
  switch (s) {
    case CUSOLVER_STATUS_NOT_INITIALIZED: return "CUSOLVER_STATUS_NOT_INITIALIZED";
    case CUSOLVER_STATUS_ALLOC_FAILED: return "CUSOLVER_STATUS_ALLOC_FAILED";
    case CUSOLVER_STATUS_INVALID_VALUE: return "CUSOLVER_STATUS_INVALID_VALUE";
    case CUSOLVER_STATUS_ARCH_MISMATCH: return "CUSOLVER_STATUS_ARCH_MISMATCH";
    case CUSOLVER_STATUS_EXECUTION_FAILED: return "CUSOLVER_STATUS_EXECUTION_FAILED";
    case CUSOLVER_STATUS_INTERNAL_ERROR: return "CUSOLVER_STATUS_INTERNAL_ERROR";
    case CUSOLVER_STATUS_NOT_SUPPORTED: return "CUSOLVER_STATUS_NOT_SUPPORTED";
    default: return "cuSOLVER error";
  }
}
}  // namespace

void check(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  if (status == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();  // clear the sticky-free error so the context stays usable
    throw DeviceOutOfMemory(std::string(what) + ": out of device memory");
  }
  throw NumericalError(std::string(what) + ": " + cudaGetErrorString(status));
}

void check(cublasStatus_t status, const char* what) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  if (status == CUBLAS_STATUS_ALLOC_FAILED) throw DeviceOutOfMemory(std::string(what) + ": out of device memory");
  throw NumericalError(std::string(what) + ": " + cublas_status_text(status));
}

void check(cusolverStatus_t status, const char* what) {
  if (status == CUSOLVER_STATUS_SUCCESS) return;
  if (status == CUSOLVER_STATUS_ALLOC_FAILED) throw DeviceOutOfMemory(std::string(what) + ": out of device memory");
  throw NumericalError(std::string(what) + ": " + cusolver_status_text(status));
}

DeviceBuffer::~DeviceBuffer() { release(); }

void* DeviceBuffer::reserve(size_t bytes) {
  if (bytes <= bytes_ && ptr_) return ptr_;
  release();
  void* p = nullptr;
  const size_t n = std::max<size_t>(bytes, 256);
  check(cudaMalloc(&p, n), "cudaMalloc");
  ptr_ = p;
  bytes_ = n;
  return ptr_;
}

void DeviceBuffer::release() {
  if (ptr_) cudaFree(ptr_);
  ptr_ = nullptr;
  bytes_ = 0;
}

CudaContext::CudaContext(int device) : device_(device) {
  try {
    check(cudaSetDevice(device), "cudaSetDevice");
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    for (int i = 0; i < 2; ++i) {
      check(cudaMallocHost(&staging_[i], kStagingBytes), "cudaMallocHost (pinned staging buffer)");
      check(cudaEventCreateWithFlags(&staged_[i], cudaEventDisableTiming), "cudaEventCreate");
    }
  } catch (...) {
    destroy();  // a half-built context releases what it got
    throw;
  }
}

CudaContext::~CudaContext() { destroy(); }

void CudaContext::destroy() {
  cudaSetDevice(device_);
  if (stream_) cudaStreamSynchronize(stream_);
  release_buffers();
  if (params_) cusolverDnDestroyParams(params_);
  if (cusolver_) cusolverDnDestroy(cusolver_);
  if (cublas_) cublasDestroy(cublas_);
  for (int i = 0; i < 2; ++i) {
    if (staged_[i]) cudaEventDestroy(staged_[i]);
    if (staging_[i]) cudaFreeHost(staging_[i]);
    staged_[i] = nullptr, staging_[i] = nullptr;
  }
  if (stream_) cudaStreamDestroy(stream_);
  params_ = nullptr, cusolver_ = nullptr, cublas_ = nullptr, stream_ = nullptr;
}

cublasHandle_t CudaContext::cublas() {
  if (!cublas_) {
    // Configured before it is kept: a handle left on the legacy stream would race with this
    // context's own stream.
    cublasHandle_t h = nullptr;
    check(cublasCreate(&h), "cublasCreate");
    try {
      check(cublasSetStream(h, stream_), "cublasSetStream");
      // Plain IEEE arithmetic in every precision: no TF32 shortcuts behind our back, and
      // reductions in the compute type (float32 for bf16 GEMMs), never in the output type.
      check(cublasSetMathMode(h, static_cast<cublasMath_t>(CUBLAS_PEDANTIC_MATH |
                                                           CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)),
            "cublasSetMathMode");
    } catch (...) {
      cublasDestroy(h);
      throw;
    }
    cublas_ = h;
  }
  return cublas_;
}

cusolverDnHandle_t CudaContext::cusolver() {
  if (!cusolver_) {
    cusolverDnHandle_t h = nullptr;
    check(cusolverDnCreate(&h), "cusolverDnCreate");
    try {
      check(cusolverDnSetStream(h, stream_), "cusolverDnSetStream");
    } catch (...) {
      cusolverDnDestroy(h);
      throw;
    }
    cusolver_ = h;
  }
  return cusolver_;
}

cusolverDnParams_t CudaContext::solver_params() {
  if (!params_) check(cusolverDnCreateParams(&params_), "cusolverDnCreateParams");
  return params_;
}

void CudaContext::upload(void* device_dst, const void* host_src, size_t bytes) {
  auto* dst = static_cast<char*>(device_dst);
  const auto* src = static_cast<const char*>(host_src);
  for (size_t off = 0, k = 0; off < bytes; off += kStagingBytes, ++k) {
    const size_t n = std::min(kStagingBytes, bytes - off);
    const int b = static_cast<int>(k % 2);
    // The DMA that last read this staging buffer must be done before we overwrite it.
    check(cudaEventSynchronize(staged_[b]), "cudaEventSynchronize (staging)");
    std::memcpy(staging_[b], src + off, n);
    check(cudaMemcpyAsync(dst + off, staging_[b], n, cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync (upload)");
    check(cudaEventRecord(staged_[b], stream_), "cudaEventRecord");
  }
}

void CudaContext::synchronize() { check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize"); }

size_t CudaContext::held_bytes() const {
  size_t n = 0;
  for (const DeviceBuffer* b : {&stored, &matrix, &gram, &values, &workspace, &transposed, &info, &partials})
    n += b->capacity();
  return n;
}

void CudaContext::release_buffers() {
  for (DeviceBuffer* b : {&stored, &matrix, &gram, &values, &workspace, &transposed, &info, &partials}) b->release();
}

void CudaContext::trim() {
  cudaStreamSynchronize(stream_);  // queued work may still use the buffers (no error check: this runs on error paths)
  release_buffers();
  host_workspace.clear();
  host_workspace.shrink_to_fit();
}

void device_memory(size_t* free_bytes, size_t* total_bytes) {
  check(cudaMemGetInfo(free_bytes, total_bytes), "cudaMemGetInfo");
}

std::string describe_device(int device) {
  cudaDeviceProp p{};
  if (cudaGetDeviceProperties(&p, device) != cudaSuccess) return "CUDA device " + std::to_string(device);
  char buf[512];
  std::snprintf(buf, sizeof buf, "%s (sm_%d%d, %.1f GiB, %d SMs)", p.name, p.major, p.minor,
                static_cast<double>(p.totalGlobalMem) / (1u << 30), p.multiProcessorCount);
  return buf;
}

}  // namespace muspec::cuda
