// Which GPU a process uses when several processes share a machine (MPI ranks, srun tasks):
// one GPU per local rank, round robin. Pure functions, unit-tested without a GPU
// (tests/test_scan_cluster.cpp); the CUDA backend (spectra/cuda/cuda_backend.cpp) calls them.
#pragma once

#include <string>

namespace muspec {

/// The CUDA device index for the process with `local_rank` among the processes on its machine,
/// given the `device_count` devices the CUDA runtime reports. The runtime already applies
/// CUDA_VISIBLE_DEVICES (a Slurm task bound to GPU 3 sees one device, index 0), so the index
/// is among the visible devices: local_rank % device_count. A negative local rank (not
/// launched as one of several) gives device 0; no device gives -1.
inline int gpu_for_local_rank(int local_rank, int device_count) {
  if (device_count <= 0) return -1;
  return local_rank < 0 ? 0 : local_rank % device_count;
}

/// How a user recognises visible device `index` in messages: its entry in CUDA_VISIBLE_DEVICES
/// (a physical index or a GPU-UUID) when that is set, else the index itself.
inline std::string visible_gpu_name(int index, const char* cuda_visible_devices) {
  if (!cuda_visible_devices || !*cuda_visible_devices) return std::to_string(index);
  const std::string list = cuda_visible_devices;
  size_t begin = 0;
  for (int i = 0;; ++i) {
    const size_t end = list.find(',', begin);
    if (i == index) return list.substr(begin, end == std::string::npos ? std::string::npos : end - begin) + " (CUDA_VISIBLE_DEVICES)";
    if (end == std::string::npos) return std::to_string(index);
    begin = end + 1;
  }
}

}  // namespace muspec
