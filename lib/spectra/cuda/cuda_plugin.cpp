// The one symbol libmuspec_cuda.so exports (everything else is hidden): the table of entry
// points that spectra/cuda_loader.cpp looks up with dlsym.
#include "spectra/cuda/entry_points.h"

extern "C" __attribute__((visibility("default"))) const muspec::CudaPlugin* muspec_cuda_plugin() {
  static const muspec::CudaPlugin plugin{muspec::kCudaPluginAbi, &muspec::cuda::devices_present,
                                         &muspec::cuda::try_make_backend, &muspec::cuda::newton_schulz};
  return &plugin;
}
