// muspec.scan (run_scan: the same library call as `muspec scan`) and parameter naming (the
// labels a scan gives each tensor: operator type, block, Muon eligibility).
#include <ctime>
#include <nlohmann/json.hpp>

#include "bindings.h"
#include "core/build_config.h"
#include "core/error.h"
#include "model/naming.h"
#include "scan/scan.h"
#include "store/spectra_store.h"

namespace muspec::python {

namespace {

py::list issues(const std::vector<ScanIssue>& v) {
  py::list out;
  for (const auto& s : v) out.append(py::make_tuple(s.file, s.tensor, s.reason));
  return out;
}

std::string now_iso8601() {
  char buf[32];
  const std::time_t t = std::time(nullptr);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

py::dict scan(const std::vector<std::string>& paths, const std::string& method, const std::string& device,
              const std::string& kind, std::vector<double> quantiles, const std::string& include,
              const std::string& exclude, const std::string& transform, int threads, int64_t min_dim, int layers,
              const std::string& family, const std::string& output) {
  ScanOptions o;
  o.paths = paths;
  o.method = parse_method(method);
  o.device = parse_device(device);
  o.labels.kind = kind;
  o.labels.layers = layers;
  o.labels.family = family;
  o.quantiles = quantiles.empty() ? default_quantiles() : quantiles;
  o.include_regex = include;
  o.exclude_regex = exclude;
  if (transform == "none") o.transform = InputTransform::None;
  else if (transform == "sign") o.transform = InputTransform::Sign;
  else throw UsageError("transform: expected none or sign, got '" + transform + "'");
  o.threads = threads;
  o.min_dim = min_dim;
  ScanResult r;
  {
    py::gil_scoped_release release;
    r = run_scan(o);
    if (!output.empty()) {
      SpectraFile f;
      f.records = r.records;
      f.attributes = {{"muspec_version", kVersion}, {"created", now_iso8601()}, {"command", "muspec.scan (Python)"},
                      {"backend", r.backend}, {"quantiles", nlohmann::json(o.quantiles).dump()}};
      write_spectra_h5(output, f);
    }
  }
  py::dict out = records_to_python(r.records, o.quantiles);
  out["skipped"] = issues(r.skipped);
  out["ignored"] = issues(r.ignored);
  out["notices"] = r.notices;
  out["backend"] = r.backend;
  out["quantiles"] = o.quantiles;
  return out;
}

py::dict identify(const std::string& name, const std::vector<int64_t>& shape, const std::string& family) {
  const LayerIdentity id = ParameterNamer(family).identify(name, shape);
  py::dict out;
  out["parameter"] = id.parameter;
  out["op_type"] = operator_type_name(id.op);
  out["layer"] = id.layer;
  out["family"] = id.family;
  out["muon"] = id.muon_eligible;
  out["transposed"] = id.stored_transposed;
  return out;
}

}  // namespace

void bind_scan(py::module_& m) {
  m.def("scan", &scan, py::arg("paths"), py::arg("method") = "auto", py::arg("device") = "auto",
        py::arg("kind") = "auto", py::arg("quantiles") = std::vector<double>{}, py::arg("include") = "",
        py::arg("exclude") = "", py::arg("transform") = "none", py::arg("threads") = 0, py::arg("min_dim") = 2,
        py::arg("layers") = 0, py::arg("family") = "", py::arg("output") = "",
        "Runs `muspec scan` as a library call; returns the CSV text, every sigma, skipped and ignored tensors.");
  m.def("identify", &identify, py::arg("name"), py::arg("shape"), py::arg("family") = "",
        "What a scan labels a parameter: canonical name, op_type, layer, muon eligibility.");
}

}  // namespace muspec::python
