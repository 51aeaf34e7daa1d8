// muspec.singular_values / muspec.summarize on in-memory arrays: the buffer protocol gives the
// array's own bytes and strides, which become a MatrixView that the spectral backend decodes
// (in place: no copy of the input is made on the Python side).
#include <map>
#include <memory>
#include <mutex>

#include "bindings.h"
#include "core/error.h"
#include "core/tensor.h"
#include "report/scan_report.h"
#include "spectra/backend.h"
#include "spectra/layer_metrics.h"
#include "spectra/summary.h"

namespace muspec::python {

namespace {

/// One backend per device for the life of the process (creating one probes BLAS and the GPU).
SpectralBackend& backend_for(Device device) {
  static std::mutex mutex;
  static std::map<Device, std::unique_ptr<SpectralBackend>> backends;
  std::lock_guard<std::mutex> lock(mutex);
  auto& b = backends[device];
  if (!b) b = make_backend(BackendOptions{device});
  return *b;
}

/// The stored element type of a buffer: its struct format ('f', 'd', 'e', with an optional
/// byte-order prefix), or `dtype_override` (e.g. "bf16" for a torch bfloat16 tensor viewed as
/// int16) when its item size matches.
DType buffer_dtype(const py::buffer_info& info, const std::string& dtype_override, ByteOrder* order,
                   const std::string& label) {
  std::string f = info.format;
  *order = ByteOrder::Little;
  if (!f.empty() && (f[0] == '<' || f[0] == '>' || f[0] == '=' || f[0] == '@' || f[0] == '!')) {
    if (f[0] == '>' || f[0] == '!') *order = ByteOrder::Big;
    f = f.substr(1);
  }
  if (!dtype_override.empty()) {
    const auto t = dtype_from_user_name(dtype_override);
    if (!t || !dtype_is_decodable_float(*t))
      throw UsageError(label + ": dtype '" + dtype_override + "' is not a floating type muspec decodes");
    if (dtype_bits(*t) != 8 * info.itemsize)
      throw UsageError(label + ": dtype '" + dtype_override + "' has " + std::to_string(dtype_bits(*t) / 8) +
                       "-byte elements but the array's are " + std::to_string(info.itemsize) + " bytes");
    return *t;
  }
  if (f == "d") return DType::F64;
  if (f == "f") return DType::F32;
  if (f == "e") return DType::F16;
  throw UsageError(label + ": unsupported element type (buffer format '" + info.format +
                   "'); expected float64, float32 or float16, or pass dtype='bf16' for bfloat16 bits");
}

MatrixView matrix_view(const py::buffer_info& info, const std::string& dtype_override, const std::string& label) {
  if (info.ndim != 2)
    throw UsageError(label + ": expected a 2-D array, got " + std::to_string(info.ndim) + " dimensions");
  MatrixView m;
  m.dtype = buffer_dtype(info, dtype_override, &m.byte_order, label);
  m.rows = info.shape[0];
  m.cols = info.shape[1];
  if (m.rows < 1 || m.cols < 1)
    throw UsageError(label + ": empty matrix (" + std::to_string(m.rows) + " x " + std::to_string(m.cols) + ")");
  for (int d = 0; d < 2; ++d)
    if (info.strides[d] % info.itemsize != 0)
      throw UsageError(label + ": stride " + std::to_string(info.strides[d]) +
                       " bytes is not a multiple of the element size");
  m.row_stride = info.strides[0] / info.itemsize;
  m.col_stride = info.strides[1] / info.itemsize;
  m.base = static_cast<const uint8_t*>(info.ptr);
  return m;
}

InputTransform parse_transform(const std::string& t) {
  if (t == "none") return InputTransform::None;
  if (t == "sign") return InputTransform::Sign;
  throw UsageError("transform: expected none or sign, got '" + t + "'");
}

}  // namespace

py::dict analyse_view(const MatrixView& m, AnalyseOptions o) {
  const SpectralMethod sm = parse_method(o.method);
  const InputTransform tr = parse_transform(o.transform);
  if (o.quantiles.empty()) o.quantiles = default_quantiles();
  SpectralBackend& backend = backend_for(parse_device(o.device));
  SpectrumRecord rec;
  rec.name = rec.tensor = o.name;
  rec.rows = m.rows;
  rec.cols = m.cols;
  rec.tensor_shape = {m.rows, m.cols};
  rec.dtype = std::string(dtype_name(m.dtype));
  rec.transform = o.transform;
  {
    py::gil_scoped_release release;
    StoredSpectrum st = backend.spectrum_of_stored(m, tr, sm, o.name);
    rec.nonfinite = st.conversion.nonfinite;
    if (st.values) {
      rec.method = method_name(st.values->method);
      rec.device = device_name(st.values->device);
      rec.floor = st.values->floor;
      rec.sigma = std::move(st.values->sigma);
      rec.summary = summarize_spectrum(rec.sigma, st.conversion.frobenius, rec.floor, o.quantiles);
      rec.layer_metrics = compute_layer_metrics(rec.sigma, rec.rows, rec.cols, rec.floor);
    }
  }
  py::dict out;
  out["sigma"] = to_numpy(rec.sigma);
  out["method"] = rec.method;
  out["device"] = rec.device;
  out["floor"] = rec.floor;
  out["nonfinite"] = rec.nonfinite;
  out["frobenius"] = rec.summary.frobenius;
  out["address"] = reinterpret_cast<uintptr_t>(m.base);
  out["csv"] = summary_csv({rec}, o.quantiles);
  return out;
}

namespace {

/// The buffer-protocol route: NumPy arrays (any strides, either byte order, read-only maps).
py::dict analyse_array(const py::buffer& array, const std::string& method, const std::string& dtype,
                       const std::string& transform, std::vector<double> quantiles, const std::string& name,
                       const std::string& device) {
  const py::buffer_info info = array.request();  // keeps the buffer alive during the call
  return analyse_view(matrix_view(info, dtype, name), {method, dtype, transform, name, device, std::move(quantiles)});
}

}  // namespace

void bind_arrays(py::module_& m) {
  m.def("analyse_array", &analyse_array, py::arg("array"), py::arg("method") = "auto", py::arg("dtype") = "",
        py::arg("transform") = "none", py::arg("quantiles") = std::vector<double>{}, py::arg("name") = "array",
        py::arg("device") = "cpu",
        "Singular values and scan summary of a 2-D buffer (float64/32/16, or bf16/fp8 bits with dtype=).");
  m.def("default_quantiles", &default_quantiles, "The quantile levels `muspec scan` reports by default.");
  m.def("svd_floor", &svd_floor, py::arg("sigma_max"), py::arg("rows"), py::arg("cols"),
        "Reliable floor of a float64 SVD for this matrix (docs/spectral-methods.md).");
  m.def("gram_floor", &gram_floor, py::arg("sigma_max"), py::arg("rows"), py::arg("cols"),
        "Reliable floor of the float64 Gram route for this matrix.");
}

}  // namespace muspec::python
