// spectra.h5 from Python: read_spectra (-> the scan's CSV text and every sigma, which
// muspec/__init__.py turns into a DataFrame equal to summary.csv) and write_spectra (records
// built from Python dicts, summarized by the library, written atomically by the store code, so
// the schema is exactly what `muspec fit/recommend/report` read).
#include <nlohmann/json.hpp>

#include "bindings.h"
#include "core/build_config.h"
#include "core/error.h"
#include "spectra/layer_metrics.h"
#include "spectra/summary.h"
#include "store/spectra_store.h"

namespace muspec::python {

namespace {

/// The quantile levels of a store: its "quantiles" attribute (JSON, as `muspec scan` writes),
/// else those of its first analysed record, else the scan's defaults.
std::vector<double> store_quantiles(const SpectraFile& f) {
  const auto it = f.attributes.find("quantiles");
  if (it != f.attributes.end()) {
    const auto j = nlohmann::json::parse(it->second, nullptr, false);
    if (j.is_array() && !j.empty() && std::all_of(j.begin(), j.end(), [](const auto& v) { return v.is_number(); }))
      return j.get<std::vector<double>>();
  }
  for (const auto& r : f.records)
    if (!r.summary.quantiles.empty()) {
      std::vector<double> qs;
      for (const auto& q : r.summary.quantiles) qs.push_back(q.q);
      return qs;
    }
  return default_quantiles();
}

py::dict read_spectra(const std::string& path) {
  SpectraFile f;
  {
    py::gil_scoped_release release;
    f = read_spectra_h5(path);
  }
  const std::vector<double> qs = store_quantiles(f);
  py::dict out = records_to_python(f.records, qs);
  out["attributes"] = f.attributes;
  out["quantiles"] = qs;
  return out;
}

template <typename T>
T get(const py::dict& d, const char* key, T fallback) {
  return d.contains(key) && !d[key].is_none() ? d[key].cast<T>() : fallback;
}

/// A record from a dict with the store's field names (spectra/record.h) plus "sigma" (any
/// order; sorted here) and "frobenius"; the summary is computed by summarize_spectrum.
SpectrumRecord record_from_dict(const py::dict& d, const std::vector<double>& quantiles) {
  SpectrumRecord r;
  r.name = get<std::string>(d, "name", "");
  r.tensor = get<std::string>(d, "tensor", r.name);
  r.slice = get<int64_t>(d, "slice", -1);
  r.file = get<std::string>(d, "file", "");
  r.rows = get<int64_t>(d, "rows", 0);
  r.cols = get<int64_t>(d, "cols", 0);
  r.tensor_shape = get<std::vector<int64_t>>(d, "tensor_shape", {r.rows, r.cols});
  r.dtype = get<std::string>(d, "dtype", "F32");
  r.transform = get<std::string>(d, "transform", "none");
  r.run = get<std::string>(d, "run", "");
  r.step = get<int64_t>(d, "step", -1);
  r.model_params = get<int64_t>(d, "model_params", 0);
  r.params_source = get<std::string>(d, "params_source", "");
  r.kind = get<std::string>(d, "kind", "weight");
  r.parameter = get<std::string>(d, "parameter", r.name);
  r.op_type = get<std::string>(d, "op_type", "other");
  r.layer = get<int64_t>(d, "layer", -1);
  r.num_layers = get<int64_t>(d, "num_layers", 0);
  r.rel_depth = get<double>(d, "rel_depth", -1.0);
  r.muon = get<bool>(d, "muon", false);
  r.transposed = get<bool>(d, "transposed", false);
  r.method = get<std::string>(d, "method", "svd");
  r.device = get<std::string>(d, "device", "cpu");
  r.floor = get<double>(d, "floor", 0.0);
  r.nonfinite = get<int64_t>(d, "nonfinite", 0);
  r.sigma = get<std::vector<double>>(d, "sigma", {});
  std::sort(r.sigma.begin(), r.sigma.end());
  if (!r.sigma.empty()) {
    r.summary = summarize_spectrum(r.sigma, get<double>(d, "frobenius", 0.0), r.floor, quantiles);
    r.layer_metrics = compute_layer_metrics(r.sigma, r.rows, r.cols, r.floor);  // as the scan does
  }
  return r;
}

void write_spectra(const std::string& path, const py::list& records, std::map<std::string, std::string> attributes,
                   std::vector<double> quantiles) {
  if (quantiles.empty()) quantiles = default_quantiles();
  SpectraFile f;
  for (const auto& item : records) f.records.push_back(record_from_dict(item.cast<py::dict>(), quantiles));
  attributes.emplace("muspec_version", kVersion);
  attributes.emplace("quantiles", nlohmann::json(quantiles).dump());
  f.attributes = std::move(attributes);
  py::gil_scoped_release release;
  write_spectra_h5(path, f);
}

}  // namespace

void bind_store(py::module_& m) {
  m.def("read_spectra", &read_spectra, py::arg("path"),
        "Reads a spectra.h5 store: {'csv': the scan's summary CSV, 'sigma': [arrays], 'attributes', 'quantiles'}.");
  m.def("write_spectra", &write_spectra, py::arg("path"), py::arg("records"),
        py::arg("attributes") = std::map<std::string, std::string>{}, py::arg("quantiles") = std::vector<double>{},
        "Writes records (dicts with the store's field names, 'sigma' and 'frobenius') to a spectra.h5 store, "
        "atomically.");
}

}  // namespace muspec::python
