// `muspec report`: one self-contained HTML page (inline SVG and CSS, a little plain JS, no
// network) over the outputs of a scan, a fit and a recommendation. Sections and how to read
// them: docs/report.md.
//
//   ReportInputs in = load_report_inputs({"out/"});   // or spectra.h5, laws.json, ns_config.json
//   write_file_atomically("report.html", html_report(in));
//
// Every string taken from a file (tensor names, runs, paths) is escaped before it reaches the
// page: tensor names are untrusted.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "laws/laws.h"
#include "spectra/record.h"

namespace muspec::analysis {

/// The WeightWatcher-style layer metrics shown as extra table columns when a store's /summary
/// group holds them (docs/report.md); absent columns are omitted.
const std::vector<std::string>& layer_metric_names();

struct ReportInputs {
  std::vector<std::string> spectra_paths;  ///< stores read, in order
  std::vector<SpectrumRecord> records;     ///< all their records, in order
  std::vector<std::string> backends;       ///< each store's "backend" attribute ("" when absent)
  /// metric name -> one value per record (NaN where a store lacks it); only metrics some store has.
  std::map<std::string, std::vector<double>> metrics;
  std::optional<LawSet> laws;
  std::string ns_config_path;
  std::optional<nlohmann::json> ns_config;  ///< a document that passed ns_config_problem
};

/// Reads each path by its kind: *.h5 (spectra store), a JSON file whose "format" says
/// laws / ns_config, or a directory (its spectra.h5, laws.json and ns_config.json, those that
/// exist). Throws UsageError for an unknown kind or a second laws/ns_config file, InputError
/// (naming the file) for a malformed one.
ReportInputs load_report_inputs(const std::vector<std::string>& paths);

/// The HTML document.
std::string html_report(const ReportInputs& in);

}  // namespace muspec::analysis
