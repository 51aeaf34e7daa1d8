#include "spectra/cpu/workspace.h"

#include <sys/mman.h>

#include <cstdlib>
#include <new>

namespace muspec {

namespace {
constexpr size_t kHugePage = size_t{2} << 20;
}

HostBuffer::~HostBuffer() { release(); }

void HostBuffer::release() {
  std::free(data_);
  data_ = nullptr;
  capacity_ = bytes_ = 0;
}

double* HostBuffer::reserve(size_t count) {
  if (count <= capacity_) return data_;
  release();
  const size_t bytes = count * sizeof(double);
  // Large buffers start on a huge-page boundary and are a whole number of huge pages, so that
  // the kernel can back them with 2 MiB pages (where transparent huge pages are in "madvise"
  // mode, as on Debian); std::aligned_alloc requires the size to be a multiple of the alignment.
  const bool huge = bytes >= 2 * kHugePage;
  const size_t rounded = huge ? (bytes + kHugePage - 1) / kHugePage * kHugePage : bytes;
  void* p = huge ? std::aligned_alloc(kHugePage, rounded) : std::malloc(rounded);
  if (!p) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
  if (huge) madvise(p, rounded, MADV_HUGEPAGE);  // advice only: failure is harmless
#endif
  data_ = static_cast<double*>(p);
  capacity_ = rounded / sizeof(double);
  bytes_ = rounded;
  return data_;
}

void CpuWorkspace::trim(size_t keep_bytes) {
  const size_t held = (x.capacity() + gram.capacity() + lapack_work.capacity() + x32.capacity()) * sizeof(double) +
                      lapack_work32.capacity() * sizeof(float);
  if (held <= keep_bytes) return;
  x.release();
  gram.release();
  x32.release();
  std::vector<double>().swap(lapack_work);
  std::vector<float>().swap(lapack_work32);
}

CpuWorkspace& cpu_workspace() {
  thread_local CpuWorkspace w;
  return w;
}

}  // namespace muspec
