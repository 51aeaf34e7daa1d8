// The laws figures and the recommended NS configuration (a layer × op heat map of steps, FLOPs
// against the uniform default) of the HTML report.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "report/html_parts.h"
#include "report/law_plot.h"
#include "report/scan_report.h"

namespace muspec::analysis::html {

namespace {

/// The figure without its XML declaration, ready to inline.
std::string inline_svg(std::string svg) {
  if (svg.compare(0, 5, "<?xml") == 0) svg.erase(0, svg.find('\n') + 1);
  return svg;
}

double number_or_nan(const nlohmann::json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_number() ? j[key].get<double>() : NAN;
}

/// Heat-map cell color: steps relative to the default (blue fewer, red more).
std::string cell_color(int steps, int default_steps) {
  if (steps == default_steps) return "#f7f7f7";
  const double t = std::min(1.0, std::fabs(steps - default_steps) / 4.0);
  const int shade = static_cast<int>(std::lround(235 - 120 * t));
  const std::string s = format_number("%.0f", shade);
  return steps < default_steps ? "rgb(" + s + "," + s + ",255)" : "rgb(255," + s + "," + s + ")";
}

}  // namespace

std::string laws_section(const ReportInputs& in) {
  std::ostringstream o;
  o << "<section id=\"laws\"><h2>Scaling laws</h2>";
  if (!in.laws) return o.str() + "<p class=\"note\">No laws.json given.</p></section>\n";
  o << "<p class=\"note\">From " << esc(in.laws->path) << " (muspec fit, kind " << esc(in.laws->kind)
    << "): each group's settled quantile against model size with the fitted law and its 95% band, "
       "one figure per quantile level (docs/plots.md).</p>";
  for (const double level : plotted_quantile_levels(in.laws.value())) {
    LawPlotOptions options;
    options.quantile_level = level;
    o << "<div class=\"law-figure\" data-level=\"" << quantile_label(level) << "\">"
      << inline_svg(laws_svg(in.laws.value(), options)) << "</div>\n";
  }
  o << "</section>\n";
  return o.str();
}

std::string config_section(const ReportInputs& in) {
  std::ostringstream o;
  o << "<section id=\"config\"><h2>Recommended NS configuration</h2>";
  if (!in.ns_config) return o.str() + "<p class=\"note\">No ns_config.json given.</p></section>\n";
  const nlohmann::json& c = *in.ns_config;
  const int default_steps = c["default"].value("steps", 5);
  // (layer, op) -> the distinct step counts of its entries; layer -1: outside the blocks.
  std::map<int64_t, std::map<std::string, std::set<int>>> cells;
  std::set<std::string> ops;
  for (const auto& [name, p] : c["parameters"].items()) {
    const int64_t layer = p.value("layer", int64_t{-1});
    const std::string op = p.value("op_type", std::string("other"));
    cells[layer][op].insert(p.value("steps", 0));
    ops.insert(op);
  }
  if (c.contains("patterns") && c["patterns"].is_array())
    for (const auto& p : c["patterns"]) {
      const auto& layers = p.value("layers", nlohmann::json::array());
      if (!layers.is_array() || layers.size() != 2 || !layers[0].is_number_integer() || !layers[1].is_number_integer()) continue;
      const std::string op = p.value("op_type", std::string("other"));
      const int64_t first = layers[0].get<int64_t>(), last = std::min(layers[1].get<int64_t>(), first + 4096);
      for (int64_t l = first; l <= last; ++l) cells[l][op].insert(p.value("steps", 0));
      ops.insert(op);
    }
  const auto& prov = c.value("provenance", nlohmann::json::object());
  o << "<p class=\"note\">From " << esc(in.ns_config_path) << " (mode " << esc(prov.value("mode", std::string("?")))
    << ", family " << esc(prov.value("family", std::string("?"))) << ", quantile "
    << shown(number_or_nan(prov, "quantile")) << "). Steps per layer and op type; the uniform default is "
    << default_steps << " steps (blue: fewer, red: more). docs/ns-config.md.</p>";
  o << "<table class=\"heat\" id=\"config-heat\"><thead><tr><th class=\"t\">layer</th>";
  for (const auto& op : ops) o << "<th>" << esc(op) << "</th>";
  o << "</tr></thead><tbody>";
  for (const auto& [layer, row] : cells) {
    o << "<tr><th class=\"t\">" << (layer >= 0 ? std::to_string(layer) : "outside blocks") << "</th>";
    for (const auto& op : ops) {
      const auto it = row.find(op);
      if (it == row.end()) {
        o << "<td></td>";
        continue;
      }
      std::string text;
      for (const int s : it->second) text += (text.empty() ? "" : "/") + std::to_string(s);
      o << "<td data-layer=\"" << layer << "\" data-op=\"" << esc(op) << "\" data-steps=\"" << text
        << "\" style=\"background:" << cell_color(*it->second.rbegin(), default_steps) << "\">" << text << "</td>";
    }
    o << "</tr>";
  }
  o << "</tbody></table>";
  const auto& totals = c.value("totals", nlohmann::json::object());
  const double flops = number_or_nan(totals, "flops"), def = number_or_nan(totals, "default_flops");
  o << "<table class=\"flops\"><tr><th class=\"t\">NS FLOPs per optimizer step, this configuration</th><td id=\"flops\" data-v=\""
    << exact(flops) << "\">" << shown(flops) << "</td></tr><tr><th class=\"t\">the uniform default</th><td id=\"default-flops\" data-v=\""
    << exact(def) << "\">" << shown(def) << "</td></tr><tr><th class=\"t\">ratio</th><td id=\"flops-ratio\" data-v=\""
    << exact(flops / def) << "\">" << shown(flops / def) << "</td></tr></table>";
  o << "</section>\n";
  return o.str();
}

}  // namespace muspec::analysis::html
