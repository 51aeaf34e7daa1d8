// Shared declarations of the pybind11 bindings (tools/python/bindings/*.cpp) behind
// `import muspec`. Each file binds one part of the library; module.cpp puts them together.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "core/tensor.h"
#include "spectra/record.h"

namespace muspec::python {

namespace py = pybind11;

void bind_arrays(py::module_& m);  ///< singular_values / summarize of in-memory arrays
void bind_store(py::module_& m);   ///< spectra.h5 read and write
void bind_scan(py::module_& m);    ///< run_scan, parameter naming
void bind_ns(py::module_& m);      ///< Newton-Schulz schedules
void bind_plan(py::module_& m);    ///< NS budget planning (muspec plan)
void bind_laws(py::module_& m);    ///< fit, predict, recommend
void bind_dlpack(py::module_& m);  ///< arrays handed over through DLPack

/// How analyse_view computes: the scan's options for one matrix.
struct AnalyseOptions {
  std::string method = "auto", dtype, transform = "none", name = "array", device = "cpu";
  std::vector<double> quantiles;  ///< empty: the scan's defaults
};

/// Singular values and the scan's summary of one matrix view, computed by the library with the
/// GIL released (the caller keeps the memory alive and unchanged in size). The result dict holds
/// sigma (ascending), method, floor, device, nonfinite, frobenius, address (where the library
/// read the elements: the caller's own memory) and csv: the scan's CSV header and row.
py::dict analyse_view(const MatrixView& m, AnalyseOptions options);

/// Records from a DataFrame's columns (the columns of summary.csv: column name -> list of values),
/// `names` the column order, `sigma` None or one array per row. Throws UsageError naming a
/// missing column or a bad cell.
std::vector<SpectrumRecord> records_from_columns(const py::dict& columns, const py::list& names, const py::object& sigma);

/// Copies doubles into a new 1-D NumPy float64 array (the result of a computation).
py::array_t<double> to_numpy(const std::vector<double>& v);

/// The scan's CSV (summary_csv) and every record's sigma: what the Python side turns into a
/// DataFrame equal to summary.csv.
py::dict records_to_python(const std::vector<SpectrumRecord>& records, const std::vector<double>& quantiles);

}  // namespace muspec::python
