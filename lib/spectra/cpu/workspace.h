// Internal: float64 scratch buffers that the CPU backend keeps per thread across matrices.
//
// A fresh std::vector<double> per matrix is zero-filled and page-faulted in on every call: on the
// development VM that cost more than the Gram product itself (a fresh 128 MiB buffer 0.49 s
// against 0.02 s to fill one already mapped; docs/spectral-methods.md, "Host overhead"). These
// buffers are allocated without initialisation, grow only, and ask for transparent huge pages
// (MADV_HUGEPAGE) when large, which cuts the page faults by 512x.
#pragma once

#include <cstddef>
#include <vector>

namespace muspec {

class HostBuffer {
 public:
  HostBuffer() = default;
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;
  ~HostBuffer();
  /// At least `count` doubles, uninitialised; keeps the old storage when it is large enough.
  double* reserve(size_t count);
  size_t capacity() const { return capacity_; }
  /// Frees the storage.
  void release();

 private:
  double* data_ = nullptr;
  size_t capacity_ = 0;
  size_t bytes_ = 0;
};

/// The buffers one thread uses for one matrix: its float64 copy, its Gram matrix, LAPACK scratch.
struct CpuWorkspace {
  HostBuffer x, gram;
  std::vector<double> lapack_work;
  HostBuffer x32;  ///< gram32: the float32 copy of x and its float32 Gram matrix (one buffer)
  std::vector<float> lapack_work32;
  /// Frees everything above `keep_bytes` in total (called after each matrix, so that one
  /// huge matrix does not pin its buffers for the rest of a long-lived process).
  void trim(size_t keep_bytes);
};

/// This thread's workspace.
CpuWorkspace& cpu_workspace();

}  // namespace muspec
