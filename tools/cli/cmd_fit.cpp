// muspec fit SCANS... -o laws.json [--csv fits.csv] [--quantiles LIST] [--group G] [--burn-in B]
//            [--robust] [--bootstrap N --seed S] [--scale rel_frob|rel_max|sigma] [--kind K]
//            [--params auto|total|non-embedding] [--null-draws N --null-seed S]
// Fits per-group power laws of the settled spectral quantiles across model sizes
// (docs/scaling-laws.md).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>

#include "cli/app.h"
#include "cli/commands.h"
#include "core/atomic_file.h"
#include "core/build_config.h"
#include "core/error.h"
#include "report/law_report.h"
#include "laws/scaling_fit.h"
#include "store/spectra_store.h"

namespace muspec::cli {

namespace {

using namespace muspec::analysis;

struct FitArgs {
  std::vector<std::string> scans;
  std::string laws_out, csv_out, burn_in = "auto";
  ScalingFitOptions fit;
  bool quiet = false, list_unsettled = false;
};

std::string now_iso8601() {
  char buf[32];
  const std::time_t t = std::time(nullptr);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

/// Reads every scan; an unreadable one is reported and skipped.
std::vector<SpectrumRecord> read_scans(const std::vector<std::string>& paths, std::vector<std::string>* read_ok,
                                       const SpectraReadOptions& options) {
  std::vector<SpectrumRecord> records;
  for (const auto& p : paths) {
    try {
      SpectraFile f = read_spectra_h5(p, options);
      records.insert(records.end(), std::make_move_iterator(f.records.begin()), std::make_move_iterator(f.records.end()));
      read_ok->push_back(p);
    } catch (const InputError& e) {
      std::cerr << "muspec: skipped " << e.what() << "\n";
    }
  }
  return records;
}

/// Whether the fit could need a sigma that a summary-only read left out: record_quantile
/// computes a level from sigma when the record's summary lacks it, and a record with neither
/// sigma nor quantiles counts as unanalysed. Conservative: any record missing any wanted level,
/// or an analysable record without quantiles, asks for sigma.
bool needs_sigma(const std::vector<SpectrumRecord>& records, std::vector<double> levels) {
  constexpr double kLevelMatch = 1e-9;  // as in laws/scaling_fit.cpp
  auto has = [&](const SpectrumRecord& r, double level) {
    return std::any_of(r.summary.quantiles.begin(), r.summary.quantiles.end(),
                       [&](const QuantileValue& q) { return std::fabs(q.q - level) < kLevelMatch; });
  };
  if (levels.empty())
    for (const auto& r : records)
      for (const auto& q : r.summary.quantiles) levels.push_back(q.q);
  for (const auto& r : records) {
    if (r.summary.quantiles.empty()) {
      if (r.nonfinite == 0 && r.rows > 0 && r.cols > 0) return true;
      continue;
    }
    for (double level : levels)
      if (!has(r, level)) return true;
  }
  return false;
}

/// The records of every scan: summaries only (a store's /summary columns, no sigma) when the
/// fit needs no sigma, which is the usual case and much faster on large stores.
std::vector<SpectrumRecord> read_scans(const std::vector<std::string>& paths, std::vector<std::string>* read_ok,
                                       const std::vector<double>& levels) {
  SpectraReadOptions summaries_only;
  summaries_only.sigma = false;
  std::vector<SpectrumRecord> records = read_scans(paths, read_ok, summaries_only);
  if (!needs_sigma(records, levels)) return records;
  std::vector<std::string> again;
  return read_scans(*read_ok, &again, SpectraReadOptions{});
}

void report_unsettled(const ScalingFitResult& r, bool list_all) {
  for (const auto& n : r.notices) std::cerr << "muspec: note: " << n << "\n";
  for (const auto& w : r.warnings) std::cerr << "muspec: warning: " << w << "\n";
  if (r.unsettled.empty()) return;
  if (list_all) {
    for (const auto& u : r.unsettled)
      std::cerr << "muspec: unsettled: run '" << u.run << "', " << u.parameter << ", q=" << u.quantile_level << ": "
                << u.reason << "\n";
    return;
  }
  std::map<std::string, int> per_run;
  for (const auto& u : r.unsettled) ++per_run[u.run];
  std::cerr << "muspec: note: " << r.unsettled.size() << " of " << r.series
            << " series never settled and were left out (";
  bool first = true;
  for (const auto& [run, n] : per_run) std::cerr << (first ? "" : ", ") << run << ": " << n, first = false;
  std::cerr << "); --list-unsettled names them\n";
}

int run_fit_command(FitArgs& a) {
  std::vector<NamedPath> given = {{"--group", a.fit.grouping}};
  for (const auto& p : a.scans) given.push_back({"input", p});
  check_paths(given, {{"-o", a.laws_out}, {"--csv", a.csv_out}});
  a.fit.burn_in = parse_burn_in(a.burn_in);
  check_scaling_fit_options(a.fit);
  // scans -> records -> settled values -> groups -> power laws
  std::vector<std::string> inputs;
  const std::vector<SpectrumRecord> records = read_scans(a.scans, &inputs, a.fit.quantiles);
  if (inputs.empty()) {
    std::cerr << "muspec: error: no scan could be read; no output written\n";
    return kExitFatal;
  }
  ScalingFitResult r = fit_scaling_laws(records, a.fit);
  report_unsettled(r, a.list_unsettled);
  if (r.records_used == 0) {
    std::cerr << "muspec: error: no record of kind '" << r.laws.kind << "' with a model size to fit; no output written\n";
    return kExitFatal;
  }
  r.laws.inputs = inputs;
  r.laws.muspec_version = kVersion;
  r.laws.created = now_iso8601();
  {
    OutputTransaction outputs;  // laws.json and --csv together, or neither
    write_laws_json(a.laws_out, r.laws);
    if (!a.csv_out.empty()) write_file_atomically(a.csv_out, laws_csv(r.laws));
    outputs.commit();
  }
  if (!a.quiet) {
    std::cout << laws_table(r.laws);
    std::cout << "kind " << r.laws.kind << ", scale " << r.laws.scale << ", burn-in " << r.laws.burn_in << ", "
              << r.laws.method << "; beta: exponent of q ~ M^beta; null: beta of i.i.d. Gaussian matrices of the "
              << "same shapes; leave-largest-out: error of the prediction for the largest size from the smaller ones\n"
              << laws_footer(r.laws);
  }
  return inputs.size() == a.scans.size() ? kExitOk : kExitSkipped;
}

}  // namespace

Action setup_fit(CLI::App& sub) {
  auto a = std::make_shared<FitArgs>();
  sub.add_option("scans", a->scans, "spectra.h5 files written by `muspec scan` (runs of several model sizes)")->required();
  sub.add_option("-o,--output", a->laws_out, "write the laws to this JSON file (docs/scaling-laws.md)")->required();
  sub.add_option("--csv", a->csv_out, "write one CSV row per group and quantile");
  sub.add_option("--quantiles", a->fit.quantiles, "quantile levels to fit, comma-separated (default: all in the scans)")
      ->delimiter(',');
  sub.add_option("--group", a->fit.grouping,
                 "optype,depth:N | optype | depth:N | layer-from-end:N | [optype,]layer-from-end:N | FILE.json")
      ->capture_default_str();
  sub.add_option("--burn-in", a->burn_in, "auto | STEP | FRACTION (of the last step, e.g. 0.3)")->capture_default_str();
  sub.add_option("--scale", a->fit.scale, "rel_frob (sigma/||X||_F, what NS sees) | rel_max | sigma")->capture_default_str();
  sub.add_option("--kind", a->fit.kind, "record kind: auto (momentum if present, else exp_avg, else weight) | momentum | exp_avg | weight | ...")
      ->capture_default_str();
  sub.add_option("--transform", a->fit.transform, "records of this input transform: none | sign")->capture_default_str();
  sub.add_flag("--all-matrices", a->fit.all_matrices, "also fit matrices that Muon does not orthogonalize");
  sub.add_option("--params", a->fit.params,
                 "model size M: auto (the records' one definition; a mix is refused) | total | non-embedding "
                 "(records counted otherwise are left out; scan --param-count sets the count)")
      ->capture_default_str();
  sub.add_option("--null-draws", a->fit.null_draws,
                 "Gaussian matrices simulated per shape for the null exponent (0 = no null)")
      ->capture_default_str();
  sub.add_option("--null-seed", a->fit.null_seed, "seed of the null simulation")->capture_default_str();
  sub.add_flag("--robust", a->fit.fit.robust, "Huber IRLS instead of weighted least squares");
  sub.add_option("--bootstrap", a->fit.fit.bootstrap, "bootstrap replicates over layers and steps (0 = none)")
      ->capture_default_str();
  sub.add_option("--seed", a->fit.fit.seed, "bootstrap seed")->capture_default_str();
  sub.add_flag("--list-unsettled", a->list_unsettled, "name every series that never settled");
  sub.add_flag("-q,--quiet", a->quiet, "no table on the terminal");
  return [a] { return run_fit_command(*a); };
}

}  // namespace muspec::cli
