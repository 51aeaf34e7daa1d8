// Arrays handed over through DLPack (the `__dlpack__()` capsule of torch tensors, NumPy >= 1.22
// arrays and other array libraries): the DLTensor's pointer, shape and strides become a
// MatrixView that the spectral backend decodes in place, strided or not, bfloat16 included.
// The header is Debian's libdlpack-dev; without it the module is built without this route and
// muspec/arrays.py uses the buffer protocol alone (_muspec.has_dlpack is then False).
#include <string>

#include "bindings.h"
#include "core/error.h"

#if __has_include(<dlpack/dlpack.h>)
#include <dlpack/dlpack.h>
#define MUSPEC_HAVE_DLPACK 1
#else
#define MUSPEC_HAVE_DLPACK 0
#endif

namespace muspec::python {

#if MUSPEC_HAVE_DLPACK

namespace {

constexpr const char* kCapsuleName = "dltensor";
constexpr const char* kUsedCapsuleName = "used_dltensor";

/// Owns a consumed DLManagedTensor: the producer's deleter runs when the computation is done
/// (with the GIL held: NumPy's and torch's deleters release Python objects).
class ConsumedTensor {
 public:
  explicit ConsumedTensor(const py::capsule& capsule) {
    if (std::string(capsule.name() ? capsule.name() : "") != kCapsuleName)
      throw UsageError("DLPack: expected an unused 'dltensor' capsule (an object's __dlpack__()), got '" +
                       std::string(capsule.name() ? capsule.name() : "") + "'");
    managed_ = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule.ptr(), kCapsuleName));
    if (!managed_) throw py::error_already_set();
    // Renamed so that the capsule's own destructor leaves the tensor to us (the DLPack protocol).
    if (PyCapsule_SetName(capsule.ptr(), kUsedCapsuleName) != 0) throw py::error_already_set();
  }
  ~ConsumedTensor() {
    if (managed_ && managed_->deleter) managed_->deleter(managed_);
  }
  ConsumedTensor(const ConsumedTensor&) = delete;
  ConsumedTensor& operator=(const ConsumedTensor&) = delete;
  const DLTensor& tensor() const { return managed_->dl_tensor; }

 private:
  DLManagedTensor* managed_ = nullptr;
};

std::string dtype_text(const DLDataType& t) {
  const char* code = t.code == kDLFloat ? "float" : t.code == kDLBfloat ? "bfloat" : t.code == kDLInt ? "int"
                     : t.code == kDLUInt ? "uint" : "code" ;
  return std::string(code) + std::to_string(t.bits) + (t.lanes != 1 ? "x" + std::to_string(t.lanes) : "");
}

DType tensor_dtype(const DLDataType& t, const std::string& dtype_override, const std::string& label) {
  if (t.lanes != 1) throw UsageError(label + ": vector element type " + dtype_text(t) + " is not supported");
  if (!dtype_override.empty()) {
    const auto d = dtype_from_user_name(dtype_override);
    if (!d || !dtype_is_decodable_float(*d))
      throw UsageError(label + ": dtype '" + dtype_override + "' is not a floating type muspec decodes");
    if (dtype_bits(*d) != t.bits)
      throw UsageError(label + ": dtype '" + dtype_override + "' has " + std::to_string(dtype_bits(*d) / 8) +
                       "-byte elements but the array's are " + std::to_string(t.bits / 8) + " bytes");
    return *d;
  }
  if (t.code == kDLFloat && t.bits == 64) return DType::F64;
  if (t.code == kDLFloat && t.bits == 32) return DType::F32;
  if (t.code == kDLFloat && t.bits == 16) return DType::F16;
  if (t.code == kDLBfloat && t.bits == 16) return DType::BF16;
  throw UsageError(label + ": unsupported element type " + dtype_text(t) +
                   "; expected float64, float32, float16 or bfloat16");
}

MatrixView dlpack_view(const DLTensor& t, const std::string& dtype_override, const std::string& label) {
  if (t.device.device_type != kDLCPU && t.device.device_type != kDLCUDAHost)
    throw UsageError(label + ": the array is on DLPack device type " + std::to_string(t.device.device_type) +
                     "; muspec reads CPU memory (use .cpu(), or muspec_torch.SpectralMonitor on the GPU)");
  if (t.ndim != 2) throw UsageError(label + ": expected a 2-D array, got " + std::to_string(t.ndim) + " dimensions");
  MatrixView m;
  m.dtype = tensor_dtype(t.dtype, dtype_override, label);
  m.byte_order = ByteOrder::Little;  // DLPack memory is in the host's order; muspec builds on little-endian hosts
  m.rows = t.shape[0];
  m.cols = t.shape[1];
  if (m.rows < 1 || m.cols < 1)
    throw UsageError(label + ": empty matrix (" + std::to_string(m.rows) + " x " + std::to_string(m.cols) + ")");
  m.row_stride = t.strides ? t.strides[0] : m.cols;  // no strides: compact row-major (DLPack)
  m.col_stride = t.strides ? t.strides[1] : 1;
  if (!t.data) throw UsageError(label + ": DLPack tensor without data");
  m.base = static_cast<const uint8_t*>(t.data) + t.byte_offset;
  return m;
}

py::dict analyse_dlpack(const py::capsule& capsule, const std::string& method, const std::string& dtype,
                        const std::string& transform, std::vector<double> quantiles, const std::string& name,
                        const std::string& device) {
  const ConsumedTensor owned(capsule);  // released (deleter) after the computation
  const MatrixView m = dlpack_view(owned.tensor(), dtype, name);
  return analyse_view(m, {method, dtype, transform, name, device, std::move(quantiles)});
}

}  // namespace

void bind_dlpack(py::module_& m) {
  m.attr("has_dlpack") = true;
  m.def("analyse_dlpack", &analyse_dlpack, py::arg("capsule"), py::arg("method") = "auto", py::arg("dtype") = "",
        py::arg("transform") = "none", py::arg("quantiles") = std::vector<double>{}, py::arg("name") = "array",
        py::arg("device") = "cpu",
        "As analyse_array, for a DLPack capsule (an object's __dlpack__()): CPU memory read in place, any strides.");
}

#else

void bind_dlpack(py::module_& m) { m.attr("has_dlpack") = false; }

#endif

}  // namespace muspec::python
