// muspec.plan: `muspec plan` (observe-then-commit NS budget planning, analysis/configs/ns_plan)
// on a spectra store, returning the ns_config JSON text the CLI would write.
#include <optional>

#include "bindings.h"
#include "configs/ns_config.h"
#include "configs/ns_plan.h"
#include "configs/recommend.h"
#include "core/error.h"
#include "ns/quality.h"
#include "ns/simulate.h"
#include "store/spectra_store.h"

namespace muspec::python {

namespace {

py::dict plan(const std::string& spectra, std::optional<double> mean_steps, std::optional<double> budget,
              const std::string& by, const std::string& family, const std::string& precision, int max_steps,
              double quantile, const std::string& band, const std::string& run, std::optional<int64_t> step,
              const std::string& kind) {
  PlanOptions o;
  o.mean_steps = mean_steps;
  o.budget = budget;
  o.family = family;
  o.max_steps = max_steps;
  o.quantile = quantile;
  if (!band.empty()) o.band = ns::parse_band(band);
  o.precision = ns::parse_precision(precision);
  if (by == "optype") o.by = PlanGrouping::OpType;
  else if (by == "layer") o.by = PlanGrouping::Layer;
  else throw UsageError("--by '" + by + "': expected optype or layer");
  check_plan_options(o);
  NsInputSelection sel;
  sel.run = run;
  sel.step = step;
  sel.kind = kind;
  std::string config;
  std::vector<std::string> skipped;
  {
    py::gil_scoped_release release;
    const SpectraFile f = read_spectra_h5(spectra);
    const NsInputs in = select_ns_inputs(f, spectra, sel);
    PlanResult r = plan_ns_budget(in, o);
    r.config.provenance.inputs = {spectra};
    r.config.provenance.command = "muspec.plan (Python)";
    config = ns_config_to_json(r.config).dump(2);
    skipped = in.skipped;
    skipped.insert(skipped.end(), r.skipped.begin(), r.skipped.end());
  }
  py::dict out;
  out["config"] = config;
  out["skipped"] = skipped;
  return out;
}

}  // namespace

void bind_plan(py::module_& m) {
  m.def("plan", &plan, py::arg("spectra"), py::arg("mean_steps") = std::nullopt, py::arg("budget") = std::nullopt,
        py::arg("by") = "optype", py::arg("family") = "keller", py::arg("precision") = "bf16",
        py::arg("max_steps") = 15, py::arg("quantile") = 0.05, py::arg("band") = "", py::arg("run") = "",
        py::arg("step") = std::nullopt, py::arg("kind") = "auto",
        "`muspec plan` on a spectra store: {'config': ns_config JSON text, 'skipped': [...]}.");
}

}  // namespace muspec::python
