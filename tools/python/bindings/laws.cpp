// muspec.fit / predict / recommend: the library calls behind `muspec fit`, `muspec predict` and
// `muspec recommend` (analysis/laws, analysis/configs), on spectra stores or on DataFrames with
// the columns of summary.csv. Each returns the JSON text the CLI writes (laws.json,
// predictions.json, ns_config.json) plus the notes and skipped inputs the CLI prints.
#include <ctime>
#include <exception>
#include <optional>

#include "bindings.h"
#include "configs/ns_config.h"
#include "configs/recommend.h"
#include "configs/recommend_laws.h"
#include "configs/torch_groups.h"
#include "core/build_config.h"
#include "core/error.h"
#include "laws/laws.h"
#include "laws/scaling_fit.h"
#include "ns/quality.h"
#include "report/law_report.h"
#include "store/spectra_store.h"

namespace muspec::python {

namespace {

using namespace muspec::analysis;

std::string now_iso8601() {
  char buf[32];
  const std::time_t t = std::time(nullptr);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

/// The records of a DataFrame handed over as (columns dict, column names, sigma list or None).
std::vector<SpectrumRecord> frame_records(const py::tuple& frame) {
  if (frame.size() != 3) throw UsageError("frame: expected (columns, names, sigma)");
  return records_from_columns(frame[0].cast<py::dict>(), frame[1].cast<py::list>(), frame[2]);
}

// ---------------------------------------------------------------- fit
py::dict fit(const std::vector<std::string>& paths, const py::object& frame, std::vector<double> quantiles,
             const std::string& scale, const std::string& group, const std::string& burn_in, const std::string& kind,
             const std::string& transform, bool all_matrices, const std::string& params, int null_draws,
             uint64_t null_seed, bool robust, int bootstrap, uint64_t seed, const std::string& output) {
  ScalingFitOptions o;
  o.quantiles = std::move(quantiles);
  o.scale = scale;
  o.grouping = group;
  o.burn_in = parse_burn_in(burn_in);
  o.kind = kind;
  o.transform = transform;
  o.all_matrices = all_matrices;
  o.params = params;
  o.null_draws = null_draws;
  o.null_seed = null_seed;
  o.fit.robust = robust;
  o.fit.bootstrap = bootstrap;
  o.fit.seed = seed;
  check_scaling_fit_options(o);
  const bool has_frame = !frame.is_none();
  std::vector<SpectrumRecord> records;
  if (has_frame) records = frame_records(frame.cast<py::tuple>());
  std::vector<std::string> inputs, skipped;
  std::exception_ptr first_error;
  ScalingFitResult r;
  {
    py::gil_scoped_release release;
    for (const auto& p : paths) {  // as the CLI: an unreadable scan is reported and skipped
      try {
        SpectraFile f = read_spectra_h5(p);
        records.insert(records.end(), std::make_move_iterator(f.records.begin()), std::make_move_iterator(f.records.end()));
        inputs.push_back(p);
      } catch (const InputError& e) {
        skipped.push_back(e.what());
        if (!first_error) first_error = std::current_exception();
      }
    }
    if (!has_frame && inputs.empty()) {
      if (first_error) std::rethrow_exception(first_error);  // every scan unreadable: the first one's error
      throw UsageError("fit: no scan given");
    }
    r = fit_scaling_laws(records, o);
    if (r.records_used == 0)
      throw Error("no record of kind '" + r.laws.kind + "' with a model size to fit; no output written");
    r.laws.inputs = inputs;
    r.laws.muspec_version = kVersion;
    r.laws.created = now_iso8601();
    if (!output.empty()) write_laws_json(output, r.laws);
  }
  py::list unsettled;
  for (const auto& u : r.unsettled) unsettled.append(py::make_tuple(u.run, u.parameter, u.quantile_level, u.reason));
  py::dict out;
  out["laws"] = laws_json_text(r.laws);
  out["skipped"] = skipped;
  out["unsettled"] = unsettled;
  out["notices"] = r.notices;
  out["warnings"] = r.warnings;
  return out;
}

// ---------------------------------------------------------------- predict
py::dict predict(const std::string& laws_path, double params, double level, const std::string& label) {
  std::string text;
  LawSet laws;
  {
    py::gil_scoped_release release;
    laws = read_laws_json(laws_path);
    const std::vector<LawPrediction> ps = predict_laws(laws, params, level);
    if (ps.empty()) throw Error(label + " holds no fitted law (every group was refused)");
    text = predictions_json(ps, params, label);
  }
  py::dict out;
  out["predictions"] = text;
  out["notes"] = laws.notes;
  return out;
}

// ---------------------------------------------------------------- recommend
struct RecommendSource {
  std::string spectra, laws, label;
  py::object frame;
};

NsConfig recommend_config(const RecommendSource& src, const RecommendOptions& rec, const NsInputSelection& sel,
                          const LawsTarget& target, std::vector<std::string>* skipped, std::vector<std::string>* notes) {
  if (!src.laws.empty()) {
    if (rec.verify) throw UsageError("recommend: --verify needs --spectra (the measured matrices)");
    py::gil_scoped_release release;
    NsConfig c = recommend_predicted(src.laws, target, rec, skipped, notes);
    if (!src.label.empty()) c.provenance.inputs[0] = src.label;
    return c;
  }
  SpectraFile f;
  const bool has_frame = !src.frame.is_none();
  if (has_frame) f.records = frame_records(src.frame.cast<py::tuple>());
  py::gil_scoped_release release;
  if (!has_frame) f = read_spectra_h5(src.spectra);
  const NsInputs in = select_ns_inputs(f, src.label, sel);
  *skipped = in.skipped;
  notes->push_back("using " + in.selection_note);
  NsConfig c = recommend_measured(in, rec, skipped);
  c.provenance.inputs = {src.label};
  return c;
}

py::dict recommend(const std::string& spectra, const py::object& frame, const std::string& laws,
                   const std::string& label, double quantile, const std::string& family, const std::string& band,
                   double margin, int max_steps, const std::string& precision, bool verify, const std::string& burn_in,
                   double fragile_ratio, const std::string& run, std::optional<int64_t> step, const std::string& kind,
                   bool latest, std::optional<double> params, double level, std::optional<int> layers,
                   const std::string& model_config, const std::string& naming, const std::string& output,
                   const std::string& format, const std::string& name_prefix) {
  RecommendSource src{spectra, laws, label, frame};
  if ((!spectra.empty()) + (!laws.empty()) + (!frame.is_none()) != 1)
    throw UsageError("recommend: give exactly one of spectra (a store or a DataFrame) or laws");
  RecommendOptions rec;
  rec.quantile = quantile;
  rec.family = family;
  if (!band.empty()) rec.band = ns::parse_band(band);
  rec.margin = margin;
  rec.max_steps = max_steps;
  rec.precision = ns::parse_precision(precision);
  rec.verify = verify;
  rec.burn_in = burn_in;
  rec.fragile_ratio = fragile_ratio;
  NsInputSelection sel;
  sel.run = run;
  sel.step = step;
  sel.kind = kind;
  sel.latest_only = latest;
  LawsTarget target;
  if (!laws.empty()) {
    if (!params) throw UsageError("recommend: --laws needs --params M (the target model size)");
    target.params = *params;
    target.level = level;
    target.layers = layers;
    target.model_config = model_config;
    target.naming = naming;
  } else if (params || layers || !model_config.empty()) {
    throw UsageError("recommend: --params, --layers and --model-config go with --laws, not --spectra");
  }
  const ConfigFormat fmt = parse_config_format(format);
  std::vector<std::string> skipped, notes;
  NsConfig c = recommend_config(src, rec, sel, target, &skipped, &notes);
  c.provenance.command = "muspec.recommend (Python)";
  notes.insert(notes.end(), c.notes.begin(), c.notes.end());
  for (const auto& p : c.parameters)  // as the CLI notes them
    if (p.stability && p.stability->fragile)
      notes.push_back(p.name + ": fragile: its lower bound is within the fragile ratio of the smallest one " +
                      std::to_string(p.setting.steps) + " steps cover; a slightly smaller quantile needs " +
                      std::to_string(p.setting.steps + 1));
  std::string text;
  {
    py::gil_scoped_release release;
    if (!output.empty()) {
      std::vector<std::string> approximations;
      write_config(c, fmt, rec.max_steps, name_prefix, output, &approximations);
      for (const auto& n : approximations) notes.push_back("torch-groups approximation: " + n);
    }
    text = ns_config_to_json(c).dump(2);
  }
  py::list unmet;
  for (const auto& p : c.parameters)
    if (!p.requirement_met) unmet.append(p.name);
  for (const auto& p : c.patterns)
    if (!p.requirement_met) unmet.append(p.group);
  py::dict out;
  out["config"] = text;
  out["skipped"] = skipped;
  out["notes"] = notes;
  out["unmet"] = unmet;
  return out;
}

}  // namespace

void bind_laws(py::module_& m) {
  m.def("fit", &fit, py::arg("paths"), py::arg("frame") = py::none(), py::arg("quantiles") = std::vector<double>{},
        py::arg("scale") = "rel_frob", py::arg("group") = "optype,depth:4", py::arg("burn_in") = "auto",
        py::arg("kind") = "auto", py::arg("transform") = "none", py::arg("all_matrices") = false,
        py::arg("params") = "auto", py::arg("null_draws") = 200, py::arg("null_seed") = 1, py::arg("robust") = false,
        py::arg("bootstrap") = 0, py::arg("seed") = 1, py::arg("output") = "",
        "`muspec fit`: {'laws': laws.json text, 'skipped', 'unsettled', 'notices', 'warnings'}.");
  m.def("predict", &predict, py::arg("laws"), py::arg("params"), py::arg("level") = 0.95, py::arg("label") = "",
        "`muspec predict`: {'predictions': predictions.json text, 'notes'}.");
  m.def("recommend", &recommend, py::arg("spectra") = "", py::arg("frame") = py::none(), py::arg("laws") = "",
        py::arg("label") = "", py::arg("quantile") = 0.05, py::arg("family") = "keller", py::arg("band") = "",
        py::arg("margin") = 1.0, py::arg("max_steps") = 15, py::arg("precision") = "bf16", py::arg("verify") = false,
        py::arg("burn_in") = "auto", py::arg("fragile_ratio") = 1.1, py::arg("run") = "",
        py::arg("step") = std::nullopt, py::arg("kind") = "auto", py::arg("latest") = false,
        py::arg("params") = std::nullopt, py::arg("level") = 0.95, py::arg("layers") = std::nullopt,
        py::arg("model_config") = "", py::arg("naming") = "", py::arg("output") = "", py::arg("format") = "muspec",
        py::arg("name_prefix") = "",
        "`muspec recommend`: {'config': ns_config.json text, 'skipped', 'notes', 'unmet'}.");
}

}  // namespace muspec::python
