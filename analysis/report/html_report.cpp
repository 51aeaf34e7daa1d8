#include "report/html_report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <sstream>

#include "configs/ns_config.h"
#include "core/error.h"
#include "core/json_limits.h"
#include "report/html_parts.h"
#include "report/report_assets.h"
#include "store/spectra_store.h"
#include "store/summary_columns.h"

namespace muspec::analysis {

namespace fs = std::filesystem;

const std::vector<std::string>& layer_metric_names() {
  static const std::vector<std::string> names = {
      "alpha",        "alpha_xmin",        "alpha_ks_distance", "alpha_std_error",
      "alpha_weighted", "log_norm",        "log_spectral_norm", "log_alpha_norm",
      "matrix_entropy", "mp_softrank",     "num_spikes"};
  return names;
}

namespace {

bool has_suffix(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void add_store(ReportInputs& in, const std::string& path) {
  const SpectraFile f = read_spectra_h5(path);
  const size_t first = in.records.size(), rows = f.records.size();
  const auto columns = read_summary_columns(path, layer_metric_names(), rows);
  for (auto& [name, values] : in.metrics) values.resize(first + rows, NAN);
  for (const auto& [name, values] : columns) {
    auto& dst = in.metrics[name];
    dst.resize(first, NAN);
    dst.insert(dst.end(), values.begin(), values.end());
  }
  in.records.insert(in.records.end(), f.records.begin(), f.records.end());
  const auto backend = f.attributes.find("backend");
  in.backends.push_back(backend == f.attributes.end() ? "" : backend->second);
  in.spectra_paths.push_back(path);
}

void add_json(ReportInputs& in, const std::string& path) {
  const nlohmann::json j = read_json_file(path);
  const std::string format = j.is_object() && j.contains("format") && j["format"].is_string() ? j["format"].get<std::string>() : "";
  if (format == kNsConfigFormat) {
    if (in.ns_config) throw UsageError(path + ": a second ns_config file (the report shows one: " + in.ns_config_path + ")");
    const std::string problem = ns_config_problem(j);
    if (!problem.empty()) throw InputError(path, "", problem);
    in.ns_config = j;
    in.ns_config_path = path;
    return;
  }
  if (j.is_object() && j.contains("laws")) {
    if (in.laws) throw UsageError(path + ": a second laws file (the report shows one: " + in.laws->path + ")");
    in.laws = read_laws_json(path);
    return;
  }
  throw UsageError(path + ": neither a laws.json (muspec fit) nor an ns_config.json (muspec recommend)");
}

}  // namespace

ReportInputs load_report_inputs(const std::vector<std::string>& paths) {
  ReportInputs in;
  for (const std::string& path : paths) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      bool any = false;
      for (const char* name : {"spectra.h5", "laws.json", "ns_config.json"}) {
        const fs::path p = fs::path(path) / name;
        if (!fs::is_regular_file(p, ec)) continue;
        any = true;
        if (has_suffix(name, ".h5")) add_store(in, p.string());
        else add_json(in, p.string());
      }
      if (!any) throw UsageError(path + ": holds none of spectra.h5, laws.json, ns_config.json");
    } else if (has_suffix(path, ".h5")) {
      add_store(in, path);
    } else if (has_suffix(path, ".json")) {
      add_json(in, path);
    } else {
      throw UsageError(path + ": expected a spectra store (.h5), laws.json, ns_config.json or a directory");
    }
  }
  // A metric no matrix has a value for (NaN, or -1 for a count) gets no column.
  for (auto it = in.metrics.begin(); it != in.metrics.end();) {
    const bool count = it->first.rfind("num_", 0) == 0;
    const bool any = std::any_of(it->second.begin(), it->second.end(),
                                 [&](double v) { return std::isfinite(v) && !(count && v < 0); });
    it = any ? std::next(it) : in.metrics.erase(it);
  }
  return in;
}

namespace {

std::string page(const ReportInputs& in) {
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    << "<title>muspec report</title>\n<style>" << report_css() << "</style></head>\n<body>\n"
    << "<header><h1>muspec report</h1><nav><a href=\"#overview\">overview</a> <a href=\"#matrices\">matrices</a> "
    << "<a href=\"#profiles\">profiles</a> <a href=\"#training\">training</a> <a href=\"#laws\">laws</a> "
    << "<a href=\"#config\">configuration</a></nav></header>\n<main>\n"
    << html::overview_section(in) << html::tables_section(in) << html::profiles_section(in)
    << html::training_section(in) << html::laws_section(in) << html::config_section(in)
    << "</main>\n" << html::spectra_data(in) << "<script>" << report_js() << "</script>\n</body></html>\n";
  return o.str();
}

}  // namespace

std::string html_report(const ReportInputs& in) {
  try {
    return page(in);
  } catch (const nlohmann::json::exception& e) {
    // ns_config_problem accepted the document, yet a field had a type the page did not expect
    throw InputError(in.ns_config_path, "", std::string("unexpected content: ") + e.what());
  }
}

}  // namespace muspec::analysis
