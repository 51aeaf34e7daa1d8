// Shared declarations of the pybind11 bindings (tools/python/bindings/*.cpp) behind
// `import muspec`. Each file binds one part of the library; module.cpp puts them together.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "spectra/record.h"

namespace muspec::python {

namespace py = pybind11;

void bind_arrays(py::module_& m);  ///< singular_values / summarize of in-memory arrays
void bind_store(py::module_& m);   ///< spectra.h5 read and write
void bind_scan(py::module_& m);    ///< run_scan, parameter naming
void bind_ns(py::module_& m);      ///< Newton-Schulz schedules
void bind_plan(py::module_& m);    ///< NS budget planning (muspec plan)

/// Copies doubles into a new 1-D NumPy float64 array (the result of a computation).
py::array_t<double> to_numpy(const std::vector<double>& v);

/// The scan's CSV (summary_csv) and every record's sigma: what the Python side turns into a
/// DataFrame equal to summary.csv.
py::dict records_to_python(const std::vector<SpectrumRecord>& records, const std::vector<double>& quantiles);

}  // namespace muspec::python
