#include "spectra/backend.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "spectra/cpu/cpu_backend.h"
#include "spectra/cuda_entry.h"

namespace muspec {

namespace {
constexpr double kEps64 = std::numeric_limits<double>::epsilon();
constexpr double kEps32 = std::numeric_limits<float>::epsilon();
}

const char* method_name(SpectralMethod m) {
  switch (m) {
    case SpectralMethod::Auto: return "auto";
    case SpectralMethod::Svd: return "svd";
    case SpectralMethod::Gram: return "gram";
    case SpectralMethod::Gram32: return "gram32";
  }
  return "?";
}

SpectralMethod parse_method(const std::string& s) {
  if (s == "auto") return SpectralMethod::Auto;
  if (s == "svd") return SpectralMethod::Svd;
  if (s == "gram") return SpectralMethod::Gram;
  if (s == "gram32") return SpectralMethod::Gram32;
  throw UsageError("unknown method '" + s + "' (expected auto, svd, gram or gram32)");
}

const char* device_name(Device d) {
  switch (d) {
    case Device::Auto: return "auto";
    case Device::Cpu: return "cpu";
    case Device::Cuda: return "cuda";
  }
  return "?";
}

Device parse_device(const std::string& s) {
  if (s == "auto") return Device::Auto;
  if (s == "cpu") return Device::Cpu;
  if (s == "cuda") return Device::Cuda;
  throw UsageError("unknown device '" + s + "' (expected auto, cpu or cuda)");
}

namespace {
double rounding_scale(int64_t rows, int64_t cols) {
  return std::sqrt(static_cast<double>(std::max(rows, cols))) * kEps64;
}
}  // namespace

double svd_floor(double sigma_max, int64_t rows, int64_t cols) {
  return rounding_scale(rows, cols) / kFloorRelativeAccuracy * sigma_max;
}

double gram_floor(double sigma_max, int64_t rows, int64_t cols) {
  return std::sqrt(rounding_scale(rows, cols) / (2 * kFloorRelativeAccuracy)) * sigma_max;
}

double gram32_floor(double sigma_max, int64_t rows, int64_t cols) {
  const double c32 = rounding_scale(rows, cols) / kEps64 * kEps32;
  return std::sqrt(c32 / (2 * kFloorRelativeAccuracy)) * sigma_max;
}

namespace {
void check_shape(int64_t rows, int64_t cols, const std::string& label) {
  if (rows <= 0 || cols <= 0) throw UsageError(label + ": empty matrix " + std::to_string(rows) + "x" + std::to_string(cols));
}
}  // namespace

SingularValues SpectralBackend::singular_values(std::vector<double>& x, int64_t rows,
                                                int64_t cols, SpectralMethod method,
                                                const std::string& label) {
  check_shape(rows, cols, label);
  MUSPEC_ASSERT(static_cast<int64_t>(x.size()) == rows * cols);
  return by_policy(
      method, rows, cols, [&] { return gram_values(x, rows, cols, label); },
      [&] { return svd_values(x, rows, cols, label); }, gram32_route(x, rows, cols, label));
}

SingularValues SpectralBackend::by_policy(SpectralMethod method, int64_t rows, int64_t cols, const ValuesRoute& gram,
                                          const ValuesRoute& svd, const ValuesRoute& gram32) {
  SingularValues out;
  if (method == SpectralMethod::Gram32) {
    if (!gram32)
      throw NotAvailableError("method gram32 (float32 Gram) runs on the CPU backend only (use --device cpu)");
    out.sigma = gram32();
    out.method = SpectralMethod::Gram32;
    out.floor = gram32_floor(out.sigma.back(), rows, cols);
    out.device = device_of_last_call();
    return out;
  }
  if (method != SpectralMethod::Svd) {
    out.sigma = gram();
    out.method = SpectralMethod::Gram;
    out.floor = gram_floor(out.sigma.back(), rows, cols);
    out.device = device_of_last_call();
    const bool under_floor = out.sigma.front() < out.floor;
    if (method == SpectralMethod::Gram || !under_floor) return out;
  }
  out.sigma = svd();
  out.method = SpectralMethod::Svd;
  out.floor = svd_floor(out.sigma.back(), rows, cols);
  out.device = device_of_last_call();
  return out;
}

StoredSpectrum SpectralBackend::spectrum_of_stored(const MatrixView& m, InputTransform transform,
                                                   SpectralMethod method, const std::string& label) {
  check_shape(m.rows, m.cols, label);
  StoredSpectrum out;
  std::vector<double> x(static_cast<size_t>(m.rows * m.cols));
  out.conversion = to_dense_row_major(m, transform, x.data());
  if (out.conversion.nonfinite == 0) out.values = singular_values(x, m.rows, m.cols, method, label);
  return out;
}

std::unique_ptr<SpectralBackend> make_backend(const BackendOptions& options, std::string* notice) {
  if (options.device == Device::Cpu) return make_cpu_backend(options);
  if (options.device == Device::Cuda) return make_cuda_backend(options);  // throws if unavailable
  std::string why;
  if (auto gpu = try_make_cuda_backend(options, &why)) return gpu;
  if (notice) *notice = "using the CPU backend: " + why;
  return make_cpu_backend(options);
}

int cuda_device_count() { return cuda_devices_present(); }

}  // namespace muspec
