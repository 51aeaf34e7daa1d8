// Newton-Schulz calculus from Python (lib/ns): schedules by catalog name or file, the failure
// threshold, the fewest steps for a lower bound, and a schedule evaluated on singular values.
#include <cmath>
#include <optional>

#include "bindings.h"
#include "ns/catalog.h"
#include "ns/design.h"
#include "ns/quality.h"
#include "ns/schedule.h"

namespace muspec::python {

namespace {

ns::Band band_of(const ns::Schedule& s, const std::string& band) {
  return band.empty() ? s.target_band() : ns::parse_band(band);
}

std::optional<double> threshold(const std::string& schedule, std::optional<int> steps, const std::string& band) {
  const ns::Schedule s = ns::resolve_schedule(schedule);
  return ns::threshold(s, s.resolve_steps(steps), band_of(s, band));
}

std::optional<int> min_steps(const std::string& schedule, double lower, const std::string& band, int max_steps) {
  const ns::Schedule s = ns::resolve_schedule(schedule);
  return ns::min_steps(s, lower, band_of(s, band), max_steps);
}

py::dict evaluate(const std::string& schedule, std::optional<int> steps, const std::vector<double>& sigma,
                  const std::string& band, double frobenius) {
  const ns::Schedule s = ns::resolve_schedule(schedule);
  const ns::Band b = band_of(s, band);
  const int k = s.resolve_steps(steps);
  ns::SpectrumQuality q;
  {
    py::gil_scoped_release release;
    q = ns::evaluate_spectrum(s, k, sigma, b, frobenius);
  }
  py::dict out;
  out["steps"] = k;
  out["band"] = py::make_tuple(b.lo, b.hi);
  out["count"] = q.count;
  out["in_band"] = q.in_band;
  out["band_fraction"] = q.band_fraction;
  out["energy_fraction"] = q.energy_fraction;
  out["input_range"] = py::make_tuple(q.input_range.lo, q.input_range.hi);
  out["output_range"] = py::make_tuple(q.output_range.lo, q.output_range.hi);
  out["worst_deviation"] = q.worst_deviation;
  out["frobenius"] = q.frobenius;
  return out;
}

/// `muspec ns design`: the greedy minimax schedule (Polar Express recursion) as the JSON text of
/// its schedule file (what `--json` prints and `-o` writes), with the design's status.
py::dict design(double lower, double upper, int steps, int degree, std::optional<double> cushion, double safety,
                bool safety_inside, double tolerance, const std::string& name, const std::string& output) {
  ns::DesignOptions o;
  o.lower = lower;
  o.upper = upper;
  o.steps = steps;
  o.degree = degree;
  o.cushion = cushion;
  o.safety = safety;
  o.safety_inside = safety_inside;
  o.tolerance = tolerance;
  std::string text;
  ns::DesignResult r;
  {
    py::gil_scoped_release release;
    r = ns::design_schedule(o);
    const ns::Schedule s = r.to_schedule(name);
    if (!output.empty()) ns::save_schedule_file(s, output);
    text = ns::schedule_to_json(s).dump(2);
  }
  py::dict out;
  out["schedule"] = text;
  out["status"] = ns::design_status_name(r.status);
  out["message"] = r.message;
  out["worst_error"] = r.worst_error;
  out["image"] = py::make_tuple(r.image.lo, r.image.hi);
  return out;
}

}  // namespace

void bind_ns(py::module_& m) {
  m.def("ns_catalog", &ns::catalog_names, "Names of the built-in Newton-Schulz schedules.");
  m.def(
      "ns_schedule", [](const std::string& spec) { return ns::schedule_to_json(ns::resolve_schedule(spec)).dump(); },
      py::arg("schedule"), "A schedule (catalog name or file) as the JSON text of a schedule file.");
  m.def("ns_threshold", &threshold, py::arg("schedule"), py::arg("steps") = std::nullopt, py::arg("band") = "",
        "Smallest normalized singular value the schedule lifts into the band (None when none does).");
  m.def("ns_min_steps", &min_steps, py::arg("schedule"), py::arg("lower"), py::arg("band") = "",
        py::arg("max_steps") = 100, "Fewest steps so that every s in [lower, 1] lands in the band (None: none).");
  m.def("ns_eval", &evaluate, py::arg("schedule"), py::arg("steps") = std::nullopt, py::arg("sigma"),
        py::arg("band") = "", py::arg("frobenius") = NAN,
        "What `steps` steps of the schedule do to one matrix's singular values (band/energy fractions, ...).");
  m.def("ns_design", &design, py::arg("lower"), py::arg("upper") = 1.0, py::arg("steps"), py::arg("degree") = 5,
        py::arg("cushion") = std::nullopt, py::arg("safety") = 1.01, py::arg("safety_inside") = false,
        py::arg("tolerance") = 1e-3, py::arg("name") = "designed", py::arg("output") = "",
        "`muspec ns design`: {'schedule': schedule file JSON text, 'status', 'message', 'worst_error', 'image'}.");
}

}  // namespace muspec::python
