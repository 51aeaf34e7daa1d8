// Spectral benchmark driver: times muspec's methods on matrices stored in tensor files.
//
//   muspec_bench_spectra [--device cpu|cuda] METHOD REPEATS FILE...
//
// For each file prints one JSON line {"file", "method", "used", "device", "seconds",
// "convert_seconds", "floor", "sigma": [...]} (seconds = best of REPEATS, conversion to float64
// and upload included; convert_seconds = the host conversion alone), then a last line
// {"peak_rss_bytes": N}. tools/bench/run_cpu_bench.py and run_gpu_bench.py drive it and compare
// with NumPy and torch.
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
    double best = 1e300, convert = 1e300;
    SingularValues sv;
    for (int r = 0; r < repeats; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      std::vector<double> x(static_cast<size_t>(m.rows * m.cols));
      to_dense_row_major(m, InputTransform::None, x.data());
      const auto t1 = std::chrono::steady_clock::now();
      sv = backend->singular_values(x, m.rows, m.cols, method, argv[f]);
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      convert = std::min(convert, std::chrono::duration<double>(t1 - t0).count());
    }
    nlohmann::json line = {{"file", argv[f]}, {"method", argv[1]}, {"used", method_name(sv.method)},
                           {"device", device_name(sv.device)}, {"seconds", best}, {"convert_seconds", convert},
                           {"floor", sv.floor}, {"sigma", sv.sigma}};
    std::cout << line.dump() << std::endl;
  }
  std::cout << nlohmann::json{{"peak_rss_bytes", peak_rss_bytes()}}.dump() << std::endl;
  return 0;
}
