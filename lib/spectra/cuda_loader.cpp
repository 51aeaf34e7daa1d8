// The CUDA entry points of a build with CUDA (see cuda_entry.h): the backend lives in the
// plugin libmuspec_cuda.so, loaded on first use, and only after the driver (asked through
// libcuda directly) reports a GPU. A CPU-only process therefore never maps cuBLAS, cuSOLVER or
// the CUDA runtime.
#include <dlfcn.h>

#include <cstdlib>
#include <string>

#include "core/error.h"
#include "spectra/cuda_entry.h"

namespace muspec {

namespace {

/// GPUs the driver reports, or 0 and the reason. libcuda stays loaded when present (the CUDA
/// runtime loads it anyway).
int driver_device_count(std::string* why) {
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    *why = "no CUDA driver found (libcuda.so.1)";
    return 0;
  }
  using InitFn = int (*)(unsigned);  // CUresult cuInit(unsigned int)
  using CountFn = int (*)(int*);     // CUresult cuDeviceGetCount(int*)
  auto init = reinterpret_cast<InitFn>(dlsym(lib, "cuInit"));
  auto count = reinterpret_cast<CountFn>(dlsym(lib, "cuDeviceGetCount"));
  if (!init || !count) {
    *why = "libcuda.so.1 lacks cuInit/cuDeviceGetCount";
    return 0;
  }
  int n = 0;
  if (const int status = init(0); status != 0) {
    // 100 = CUDA_ERROR_NO_DEVICE; anything else (e.g. 3 under ASan without
    // ASAN_OPTIONS=protect_shadow_gap=0, or a driver/kernel-module mismatch) is worth seeing.
    *why = status == 100 ? "no CUDA device found" : "no CUDA device found (cuInit returned " + std::to_string(status) + ")";
    return 0;
  }
  if (count(&n) != 0 || n <= 0) {
    *why = "no CUDA device found";
    return 0;
  }
  return n;
}

/// Where the plugin is: $MUSPEC_CUDA_PLUGIN, else beside the library (or executable) that
/// holds this code, which is where the build puts it.
std::string plugin_path() {
  if (const char* env = std::getenv("MUSPEC_CUDA_PLUGIN"); env && *env) return env;
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&driver_device_count), &info) && info.dli_fname) {
    const std::string self = info.dli_fname;
    const size_t slash = self.rfind('/');
    if (slash != std::string::npos) return self.substr(0, slash + 1) + kCudaPluginFile;
  }
  return kCudaPluginFile;
}

struct LoadedPlugin {
  const CudaPlugin* plugin = nullptr;
  std::string why;  ///< when plugin is null
};

LoadedPlugin load_plugin() {
  LoadedPlugin l;
  if (driver_device_count(&l.why) == 0) return l;
  const std::string path = plugin_path();
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  std::string error = handle ? "" : dlerror();
  if (!handle && path != kCudaPluginFile) handle = dlopen(kCudaPluginFile, RTLD_NOW | RTLD_LOCAL);  // LD_LIBRARY_PATH
  if (!handle) {
    l.why = "the CUDA backend could not be loaded: " + error;
    return l;
  }
  using EntryFn = const CudaPlugin* (*)();
  auto entry = reinterpret_cast<EntryFn>(dlsym(handle, kCudaPluginSymbol));
  const CudaPlugin* p = entry ? entry() : nullptr;
  if (!p || p->abi != kCudaPluginAbi) {
    l.why = "the CUDA backend at " + path + " belongs to another muspec build (reinstall or set MUSPEC_CUDA_PLUGIN)";
    return l;
  }
  l.plugin = p;
  return l;
}

const LoadedPlugin& loaded() {
  static const LoadedPlugin l = load_plugin();  // once per process, thread-safe
  return l;
}

}  // namespace

int cuda_devices_present() {
  const LoadedPlugin& l = loaded();
  return l.plugin ? l.plugin->devices_present() : 0;
}

std::unique_ptr<SpectralBackend> try_make_cuda_backend(const BackendOptions& options, std::string* why) {
  const LoadedPlugin& l = loaded();
  if (l.plugin) return l.plugin->try_make_backend(options, why);
  if (why) *why = l.why;
  return nullptr;
}

std::unique_ptr<SpectralBackend> make_cuda_backend(const BackendOptions& options) {
  std::string why;
  if (auto b = try_make_cuda_backend(options, &why)) return b;
  throw NotAvailableError("--device cuda: " + why);
}

std::vector<double> cuda_newton_schulz(const std::vector<std::array<double, 3>>& steps, double delta, double epsilon,
                                       GpuPrecision precision, const double* g, int64_t rows, int64_t cols) {
  const LoadedPlugin& l = loaded();
  if (!l.plugin) throw NotAvailableError("--device cuda: " + l.why);
  return l.plugin->newton_schulz(steps, delta, epsilon, precision, g, rows, cols);
}

}  // namespace muspec
