// The overview and the per-(run, step) matrix tables of the HTML report, and the downsampled
// spectra the page draws on demand.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "report/html_parts.h"
#include "report/scan_report.h"
#include "report/svg_plot.h"

namespace muspec::analysis::html {

namespace {

/// Spectra longer than this are kept at this many ranks, spaced evenly in log(rank).
constexpr size_t kSpectrumPoints = 128;
/// The overview lists at most this many unanalysed matrices by name.
constexpr size_t kMaxListedSkipped = 200;

bool analysed(const SpectrumRecord& r) { return !r.sigma.empty(); }

std::string th(const std::string& key, const std::string& label, bool text = false) {
  return "<th" + std::string(text ? " class=\"t\"" : "") + " data-key=\"" + esc(key) + "\">" + label + "</th>";
}

/// The parameter -> (threshold, lower bound, output range) of an ns_config document.
struct ConfigEntry {
  double threshold = NAN, lower_bound = NAN, out_lo = NAN, out_hi = NAN;
  std::string steps = "null";  ///< JSON [delta, [a, b, c], ...]: the normalization and each step's polynomial
};

/// The setting as compact JSON for the page's script: [delta, [a, b, c], ...]; "null" when malformed.
std::string steps_json(const nlohmann::json& p) {
  const auto number = [](const nlohmann::json& j, double& v) {
    if (!j.is_number()) return false;
    v = j.get<double>();
    return std::isfinite(v);  // JSON.parse in the page reads no nan / inf
  };
  if (!p.contains("coefficients") || !p["coefficients"].is_array() || !p.contains("normalization") ||
      !p["normalization"].is_object() || !p["normalization"].contains("delta"))
    return "null";
  double v = 0;
  if (!number(p["normalization"]["delta"], v)) return "null";
  std::string out = "[" + format_number("%.17g", v);
  for (const auto& t : p["coefficients"]) {
    if (!t.is_array() || t.size() != 3) return "null";
    out += ",[";
    for (size_t k = 0; k < 3; ++k) {
      if (!number(t[k], v)) return "null";
      out += (k ? "," : "") + format_number("%.17g", v);
    }
    out += "]";
  }
  return out + "]";
}
std::map<std::string, ConfigEntry> config_entries(const ReportInputs& in) {
  std::map<std::string, ConfigEntry> out;
  if (!in.ns_config) return out;
  for (const auto& [name, p] : (*in.ns_config)["parameters"].items()) {
    ConfigEntry e;
    if (p.contains("lower_bound") && p["lower_bound"].is_number()) e.lower_bound = p["lower_bound"].get<double>();
    if (p.contains("stability") && p["stability"].is_object() && p["stability"].contains("threshold") &&
        p["stability"]["threshold"].is_number())
      e.threshold = p["stability"]["threshold"].get<double>();
    const auto& range = p.value("output_range", nlohmann::json());
    if (range.is_array() && range.size() == 2 && range[0].is_number() && range[1].is_number())
      e.out_lo = range[0].get<double>(), e.out_hi = range[1].get<double>();
    e.steps = steps_json(p);
    out[name] = e;
  }
  return out;
}

std::string json_number(double v, const char* format) {
  return std::isfinite(v) && v > 0 ? format_number(format, v) : "null";
}

}  // namespace

std::string esc(const std::string& text) { return xml_escape(text); }

std::string shown(double v) {
  if (std::isnan(v)) return "–";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return format_number("%.4g", v);
}

std::string exact(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return format_number("%.6g", v);
}

std::vector<RunStep> group_by_run_step(const std::vector<SpectrumRecord>& records) {
  std::vector<RunStep> groups;
  std::map<std::pair<std::string, int64_t>, size_t> index;
  for (size_t i = 0; i < records.size(); ++i) {
    const auto key = std::make_pair(records[i].run, records[i].step);
    auto it = index.find(key);
    if (it == index.end()) {
      it = index.emplace(key, groups.size()).first;
      groups.push_back({records[i].run, records[i].step, {}});
    }
    groups[it->second].records.push_back(i);
  }
  return groups;
}

std::string overview_section(const ReportInputs& in) {
  std::set<std::string> runs, kinds, backends;
  std::set<std::pair<std::string, int64_t>> steps;
  size_t not_analysed = 0, with_below_floor = 0;
  for (const SpectrumRecord& r : in.records) {
    runs.insert(r.run), kinds.insert(r.kind), steps.insert({r.run, r.step});
    if (!analysed(r)) ++not_analysed;
    if (r.summary.below_floor > 0) ++with_below_floor;
  }
  for (const std::string& b : in.backends) backends.insert(b.empty() ? "(not recorded)" : b);
  auto joined = [](const std::set<std::string>& s) {
    std::string out;
    for (const auto& x : s) out += (out.empty() ? "" : ", ") + esc(x.empty() ? "(none)" : x);
    return out;
  };
  std::ostringstream o;
  o << "<section id=\"overview\"><h2>Overview</h2><table class=\"overview\">";
  auto row = [&](const std::string& k, const std::string& id, const std::string& v) {
    o << "<tr><th class=\"t\">" << k << "</th><td class=\"t\" id=\"ov-" << id << "\">" << v << "</td></tr>";
  };
  std::string inputs;
  for (const auto& p : in.spectra_paths) inputs += (inputs.empty() ? "" : ", ") + esc(p);
  if (in.laws) inputs += (inputs.empty() ? "" : ", ") + esc(in.laws->path);
  if (in.ns_config) inputs += (inputs.empty() ? "" : ", ") + esc(in.ns_config_path);
  row("inputs", "inputs", inputs);
  row("matrices", "matrices", std::to_string(in.records.size()));
  row("runs", "runs", std::to_string(runs.size()) + (runs.empty() ? "" : ": " + joined(runs)));
  row("run × step checkpoints", "steps", std::to_string(steps.size()));
  row("kinds", "kinds", joined(kinds));
  row("backend", "backend", joined(backends));
  row("not analysed (non-finite entries)", "not-analysed", std::to_string(not_analysed));
  row("matrices with values below the reliable floor", "below-floor", std::to_string(with_below_floor));
  std::string metrics;
  for (const auto& [name, v] : in.metrics) metrics += (metrics.empty() ? "" : ", ") + esc(name);
  row("layer metrics", "metrics", metrics.empty() ? "none in these stores" : metrics);
  o << "</table>";
  if (not_analysed > 0) {
    o << "<p class=\"note\">Not analysed (the scan found NaN or inf entries; their spectra are empty):</p><ul class=\"skipped\">";
    size_t listed = 0;
    for (const SpectrumRecord& r : in.records)
      if (!analysed(r) && listed++ < kMaxListedSkipped)
        o << "<li>" << esc(r.name) << " in " << esc(r.file) << ": " << r.nonfinite << " non-finite entries</li>";
    if (listed > kMaxListedSkipped) o << "<li>… and " << listed - kMaxListedSkipped << " more</li>";
    o << "</ul>";
  }
  o << "<p class=\"note\">Tensors a scan leaves out (not 2-D, not floating point) are not in the store; "
       "<code>muspec scan --list-ignored</code> lists them.</p>";
  o << "</section>\n";
  return o.str();
}

namespace {

/// A JSON string safe inside a <script> element: '<', '>' and '&' as \u escapes, so no text
/// from a file can close the element (tensor names are untrusted).
std::string script_json_string(const std::string& s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') out += '\\', out += ch;
    else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

/// One cell for the page's script: "shown|sort value", or one value when both are the same.
std::string cell(const std::string& text, const std::string& value) {
  return script_json_string(text == value ? text : text + "|" + value);
}
std::string num_cell(double v) { return cell(shown(v), exact(v)); }

/// A table's rows as JSON: [record index, name, kind, op, cells...]; the page's script builds
/// the <tbody> from it when the table is first shown (a 10,000-row page opens in a fraction of
/// the time its rows as HTML take to parse).
std::string rows_json(const ReportInputs& in, const RunStep& g, const std::vector<double>& levels) {
  std::string o = "[";
  for (const size_t i : g.records) {
    const SpectrumRecord& r = in.records[i];
    const SpectralSummary& s = r.summary;
    const bool ok = analysed(r);
    if (o.size() > 1) o += ",\n";
    o += "[" + std::to_string(i) + "," + script_json_string(r.name) + "," + script_json_string(r.kind) + "," +
         script_json_string(r.op_type) + "," + cell(r.layer >= 0 ? std::to_string(r.layer) : "–", std::to_string(r.layer)) +
         "," + cell(std::to_string(r.rows) + "×" + std::to_string(r.cols), std::to_string(r.rows * r.cols)) + "," +
         num_cell(ok ? s.sigma_max : NAN) + "," + num_cell(ok ? s.cond : NAN);
    for (size_t k = 0; k < levels.size(); ++k) o += "," + num_cell(ok && k < s.quantiles.size() ? s.quantiles[k].rel_frob : NAN);
    o += "," + num_cell(ok ? s.stable_rank : NAN) + "," + num_cell(ok ? s.effective_rank : NAN);
    for (const auto& [name, v] : in.metrics) o += "," + num_cell(v[i]);
    o += "," + cell(std::to_string(s.below_floor), std::to_string(s.below_floor)) + "]";
  }
  return o + "]";
}

/// Tables start collapsed past this many tables or matrices.
constexpr size_t kMaxOpenTables = 12, kMaxOpenMatrices = 2000;

}  // namespace

std::string tables_section(const ReportInputs& in) {
  std::ostringstream o;
  o << "<section id=\"matrices\"><h2>Matrices</h2>"
    << "<p class=\"note\">One table per run and step. Click a header to sort, a name to draw its spectrum. "
       "Quantiles are σ/‖X‖_F, the scale Newton–Schulz sees after normalization.</p>"
    << "<p><label>filter names <input id=\"filter\" type=\"search\"></label></p>";
  const auto groups = group_by_run_step(in.records);
  std::vector<double> levels;
  for (const SpectrumRecord& r : in.records)
    if (analysed(r)) {
      for (const QuantileValue& q : r.summary.quantiles) levels.push_back(q.q);
      break;
    }
  const bool open = groups.size() <= kMaxOpenTables && in.records.size() <= kMaxOpenMatrices;
  size_t table_index = 0;
  for (const RunStep& g : groups) {
    const std::string id = "t" + std::to_string(table_index++);
    o << "<details" << (open ? " open" : "") << "><summary>run <b>" << esc(g.run.empty() ? "(none)" : g.run)
      << "</b>, step " << g.step << " — " << g.records.size() << " matrices</summary>\n"
      << "<table class=\"sortable\" id=\"" << id << "\" data-run=\"" << esc(g.run) << "\" data-step=\""
      << g.step << "\"><thead><tr>" << th("name", "name", true) << th("kind", "kind", true) << th("op", "op", true)
      << th("layer", "layer") << th("shape", "shape") << th("sigma_max", "σ_max") << th("cond", "cond");
    for (const double l : levels) o << th("q" + quantile_label(l), "q" + quantile_label(l));
    o << th("stable_rank", "stable rank") << th("effective_rank", "eff. rank");
    for (const auto& [name, v] : in.metrics) o << th(name, esc(name));
    o << th("below_floor", "below floor") << "</tr></thead><tbody></tbody></table>\n"
      << "<script type=\"application/json\" class=\"rows\" id=\"rows-" << id << "\">" << rows_json(in, g, levels)
      << "</script></details>\n";
  }
  o << "</section>\n<div id=\"spectrum-view\"></div>\n";
  return o.str();
}

std::string spectra_data(const ReportInputs& in) {
  const auto config = config_entries(in);
  // Distinct NS settings once, each matrix naming its setting by index: the same setting
  // serves a parameter in every run and step.
  std::map<std::string, size_t> setting_index;
  std::string settings;
  // Numbers only (no string from a file), so the JSON cannot close the script element.
  std::string o = "<script type=\"application/json\" id=\"spectra-data\">[";
  for (size_t i = 0; i < in.records.size(); ++i) {
    const SpectrumRecord& r = in.records[i];
    if (i) o += ",\n";
    const double frob = r.summary.frobenius;
    if (r.sigma.empty() || !(frob > 0)) {
      o += "null";
      continue;
    }
    const size_t n = r.sigma.size();
    std::vector<size_t> ranks;  // 1-based, largest value first
    if (n <= kSpectrumPoints) {
      for (size_t k = 1; k <= n; ++k) ranks.push_back(k);
    } else {
      for (size_t j = 0; j < kSpectrumPoints; ++j) {
        const auto k = static_cast<size_t>(std::llround(std::exp(std::log(double(n)) * double(j) / double(kSpectrumPoints - 1))));
        if (ranks.empty() || k > ranks.back()) ranks.push_back(std::min(k, n));
      }
    }
    // Ranks as differences from the previous rank; log10 values in thousandths, the first one
    // whole and then each as its drop from the previous one (values fall with rank): small
    // integers, a third of the bytes of the values written out, which a 10,000-matrix page needs.
    std::string rs, ys;
    size_t previous = 0;
    long long previous_milli = 0;
    for (const size_t k : ranks) {
      const double v = r.sigma[n - k] / frob;
      if (!(v > 0)) continue;  // a zero singular value has no place on a log axis
      if (n > kSpectrumPoints) rs += (rs.empty() ? "" : ",") + std::to_string(k - previous);
      previous = k;
      const long long milli = std::llround(std::log10(v) * 1000.0);
      ys += ys.empty() ? std::to_string(milli) : "," + std::to_string(previous_milli - milli);
      previous_milli = milli;
    }
    ConfigEntry e;
    const auto it = config.find(r.parameter);
    if (it != config.end() && r.kind != "weight") e = it->second;
    o += "[" + std::to_string(n) + ",[" + rs + "],[" + ys + "]," + json_number(e.threshold, "%.6g") + "," +
         json_number(e.lower_bound, "%.6g") + "," +
         (std::isfinite(e.out_lo) ? "[" + format_number("%.6g", e.out_lo) + "," + format_number("%.6g", e.out_hi) + "]" : "null") +
         ",";
    if (e.steps == "null") {
      o += "null]";
      continue;
    }
    const auto [where, added] = setting_index.emplace(e.steps, setting_index.size());
    if (added) settings += (settings.empty() ? "" : ",") + e.steps;
    o += std::to_string(where->second) + "]";
  }
  return o + "]</script>\n<script type=\"application/json\" id=\"ns-settings\">[" + settings + "]</script>\n";
}

}  // namespace muspec::analysis::html
