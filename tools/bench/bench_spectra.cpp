// Spectral benchmark driver: times muspec's methods on matrices stored in tensor files.
//
//   muspec_bench_spectra [--device cpu|cuda] METHOD REPEATS FILE...
//
// For each file prints one JSON line {"file", "method", "used", "device", "seconds",
// "host_decode_seconds", "floor", "sigma": [...]}, then a last line {"peak_rss_bytes": N}.
// seconds = best of REPEATS of SpectralBackend::spectrum_of_stored() on the memory-mapped
// tensor, which is what `muspec scan` runs per matrix: decoding to float64 (on the host for the
// CPU backend, on the device for CUDA) and the upload are included. host_decode_seconds = the
// host decoder alone, for reference. On the GPU one untimed call on the same matrix comes first
// (context, handles, workspace, module load: a scan pays them once, not per matrix; with one
// repeat, 1024^2 measured 0.099 s on an H100, against 0.011 s after the untimed call). tools/bench/run_cpu_bench.py and run_gpu_bench.py drive it
// and compare with NumPy and torch.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "core/tensor.h"
#include "io/tensor_source.h"
#include "spectra/backend.h"

using namespace muspec;

/// Peak resident set of this process image (VmHWM). Unlike getrusage's ru_maxrss, it is reset
/// by exec, so it does not inherit the high-water mark of the (large) parent that forked us.
static int64_t peak_rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string key;
  while (f >> key) {
    if (key == "VmHWM:") {
      int64_t kib = 0;
      f >> kib;
      return kib * 1024;
    }
    std::getline(f, key);
  }
  return -1;
}

int main(int argc, char** argv) {
  Device device = Device::Cpu;
  if (argc >= 3 && std::string(argv[1]) == "--device") {
    device = parse_device(argv[2]);
    argc -= 2, argv += 2;
  }
  if (argc < 4) {
    std::cerr << "usage: muspec_bench_spectra [--device cpu|cuda] auto|svd|gram REPEATS FILE...\n";
    return 2;
  }
  const SpectralMethod method = parse_method(argv[1]);
  const int repeats = std::max(1, std::atoi(argv[2]));
  auto backend = make_backend(BackendOptions{device, 0});
  for (int f = 3; f < argc; ++f) {
    auto src = open_tensor_file(argv[f]);
    const TensorHandle h = src->load(0);
    const MatrixView m = matrix_of(h.view);
    double best = 1e300, host_decode = 1e300;
    SingularValues sv;
    if (device == Device::Cuda) (void)backend->spectrum_of_stored(m, InputTransform::None, method, argv[f]);
    for (int r = 0; r < repeats; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      StoredSpectrum st = backend->spectrum_of_stored(m, InputTransform::None, method, argv[f]);
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      if (!st.values) {
        std::cerr << argv[f] << ": " << st.conversion.nonfinite << " NaN/Inf entries\n";
        return 1;
      }
      sv = std::move(*st.values);
      const auto t1 = std::chrono::steady_clock::now();
      std::vector<double> x(static_cast<size_t>(m.rows * m.cols));
      to_dense_row_major(m, InputTransform::None, x.data());
      host_decode = std::min(host_decode, std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count());
    }
    nlohmann::json line = {{"file", argv[f]}, {"method", argv[1]}, {"used", method_name(sv.method)},
                           {"device", device_name(sv.device)}, {"seconds", best}, {"host_decode_seconds", host_decode},
                           {"floor", sv.floor}, {"sigma", sv.sigma}};
    std::cout << line.dump() << std::endl;
  }
  std::cout << nlohmann::json{{"peak_rss_bytes", peak_rss_bytes()}}.dump() << std::endl;
  return 0;
}
