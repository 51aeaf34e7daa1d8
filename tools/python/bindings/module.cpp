// The compiled module `_muspec` (imported by tools/python/muspec/__init__.py): muspec's C++
// library for Python. Errors keep their muspec messages and become Python exceptions:
// muspec.Error (RuntimeError) and its subclasses InputError, UsageError (also ValueError),
// NumericalError (also ArithmeticError) and NotAvailableError.
#include "bindings.h"

#include "core/build_config.h"
#include "core/error.h"
#include "report/scan_report.h"

namespace muspec::python {

py::array_t<double> to_numpy(const std::vector<double>& v) {
  py::array_t<double> out(static_cast<py::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), out.mutable_data());
  return out;
}

py::dict records_to_python(const std::vector<SpectrumRecord>& records, const std::vector<double>& quantiles) {
  py::list sigma;
  for (const auto& r : records) sigma.append(to_numpy(r.sigma));
  py::dict out;
  out["csv"] = summary_csv(records, quantiles);
  out["sigma"] = sigma;
  return out;
}

namespace {

void register_errors(py::module_& m) {
  // Base first: pybind11 tries the translators in reverse order of registration.
  auto& base = py::register_exception<Error>(m, "Error", PyExc_RuntimeError);
  py::register_exception<InputError>(m, "InputError", base);
  py::tuple usage_bases = py::make_tuple(base, py::handle(PyExc_ValueError));
  py::register_exception<UsageError>(m, "UsageError", usage_bases);
  py::tuple numerical_bases = py::make_tuple(base, py::handle(PyExc_ArithmeticError));
  py::register_exception<NumericalError>(m, "NumericalError", numerical_bases);
  py::register_exception<NotAvailableError>(m, "NotAvailableError", base);
}

}  // namespace

PYBIND11_MODULE(_muspec, m) {
  m.doc() = "muspec's C++ library (singular values, summaries, spectra stores, scans, NS schedules)";
  m.attr("__version__") = kVersion;
  m.attr("built_with_cuda") = kBuiltWithCuda;
  register_errors(m);
  bind_arrays(m);
  bind_store(m);
  bind_scan(m);
  bind_ns(m);
  bind_plan(m);
  bind_laws(m);
  bind_dlpack(m);
}

}  // namespace muspec::python
