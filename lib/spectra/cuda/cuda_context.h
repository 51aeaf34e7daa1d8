// Internal to spectra/cuda/: the one place that owns CUDA state. Never included by a public
// header (public headers stay free of CUDA headers).
//
// A CudaContext is what one worker thread needs to run matrices on the GPU: the device, its
// own stream, lazily created cuBLAS/cuSOLVER handles bound to that stream, reusable device and
// host workspaces, and two pinned staging buffers for double-buffered uploads. Contexts are not
// shared between threads; the backend keeps a pool and lends one per call.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"

namespace muspec::cuda {

/// Throws NumericalError "<what>: <CUDA error string>" when `status` is not cudaSuccess.
/// An out-of-memory status throws DeviceOutOfMemory instead, so callers can fall back.
void check(cudaError_t status, const char* what);
void check(cublasStatus_t status, const char* what);
void check(cusolverStatus_t status, const char* what);

/// Thrown when a device allocation fails; the backend answers it with the CPU. A
/// NumericalError, so a path that does not fall back still reports it cleanly.
struct MUSPEC_SHARED_TYPE DeviceOutOfMemory : NumericalError {
  using NumericalError::NumericalError;
};

/// A device allocation that grows on demand and is freed with its owner.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer();
  /// At least `bytes` bytes (contents not preserved when it grows).
  void* reserve(size_t bytes);
  void release();
  size_t capacity() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

class CudaContext {
 public:
  explicit CudaContext(int device);
  CudaContext(const CudaContext&) = delete;
  CudaContext& operator=(const CudaContext&) = delete;
  ~CudaContext();

  int device() const { return device_; }
  cudaStream_t stream() const { return stream_; }
  /// Created on first use, bound to stream().
  cublasHandle_t cublas();
  cusolverDnHandle_t cusolver();
  cusolverDnParams_t solver_params();

  /// Named scratch buffers, reused across calls: the stored bytes as uploaded, the matrix in
  /// float64, its Gram matrix, the values, solver workspace, a transposed copy for gesvd,
  /// cuSOLVER's info word, and the decoder's per-block sums.
  DeviceBuffer stored, matrix, gram, values, workspace, transposed, info, partials;
  std::vector<char> host_workspace;

  /// Copies `bytes` from pageable host memory to `device_dst` through two pinned staging
  /// buffers: the host copy of chunk k+1 overlaps the DMA of chunk k. Returns once the host
  /// source has been staged (it may be freed) and the last copy is queued on stream(); work
  /// queued later on stream() sees the data.
  void upload(void* device_dst, const void* host_src, size_t bytes);
  /// Waits for all work queued on stream().
  void synchronize();
  /// Waits for the stream, then frees the scratch buffers (after a large matrix, to leave
  /// memory to others, or after an error).
  void trim();
  /// Device bytes held by the scratch buffers now.
  size_t held_bytes() const;

 private:
  void destroy();
  void release_buffers();
  int device_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  cusolverDnHandle_t cusolver_ = nullptr;
  cusolverDnParams_t params_ = nullptr;
  void* staging_[2] = {nullptr, nullptr};
  cudaEvent_t staged_[2] = {nullptr, nullptr};
};

/// Free and total device memory in bytes, for the current device.
void device_memory(size_t* free_bytes, size_t* total_bytes);

/// "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)"
std::string describe_device(int device);

}  // namespace muspec::cuda
