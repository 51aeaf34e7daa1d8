#include "report/scan_report.h"

#include <cmath>
#include <cstdio>

#include "core/build_config.h"

namespace muspec {

std::string csv_number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string csv_quote(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

namespace {

std::string num(double v) { return csv_number(v); }

nlohmann::json jnum(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

std::string shape_string(const SpectrumRecord& r) { return std::to_string(r.rows) + "x" + std::to_string(r.cols); }

bool analysed(const SpectrumRecord& r) { return r.nonfinite == 0 && !r.sigma.empty(); }

// The layer-metric cells of one CSV row, each with its leading comma; blank when not analysed.
std::string layer_metrics_cells(const LayerMetrics& lm, bool ok) {
  std::string out;
  for (const LayerMetricField& f : layer_metric_fields())
    out += "," + (!ok ? std::string() : f.real ? num(lm.*f.real) : std::to_string(lm.*f.count));
  return out + "," + (ok ? csv_quote(lm.note) : std::string());
}

// The layer metrics as JSON keys of a matrix object: null for NaN reals and -1 counts.
void add_layer_metrics(nlohmann::json& m, const LayerMetrics& lm) {
  for (const LayerMetricField& f : layer_metric_fields()) {
    if (f.real) m[f.name] = jnum(lm.*f.real);
    else m[f.name] = lm.*f.count >= 0 ? nlohmann::json(lm.*f.count) : nlohmann::json(nullptr);
  }
  m["layer_metrics_note"] = lm.note;
}

}  // namespace

std::string format_number(const char* printf_format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, printf_format, v);
  return buf;
}

std::string format_interval(const char* printf_format, double lo, double hi) {
  return "[" + format_number(printf_format, lo) + ", " + format_number(printf_format, hi) + "]";
}

std::string quantile_label(double q) { return format_number("%g", q); }

std::string summary_csv(const std::vector<SpectrumRecord>& records, const std::vector<double>& qs) {
  std::string out =
      "name,file,tensor,slice,shape,rows,cols,dtype,transform,run,step,model_params,params_source,sharded,shards,kind,parameter,op_type,layer,"
      "num_layers,rel_depth,muon,method,device,floor,nonfinite,"
      "sigma_max,sigma_min,frobenius,nuclear,cond,stable_rank,effective_rank,below_floor";
  for (double q : qs) {
    const std::string l = "q" + quantile_label(q);
    out += "," + l + "_sigma," + l + "_rel_max," + l + "_rel_frob," + l + "_cond";
  }
  for (const LayerMetricField& f : layer_metric_fields()) out += std::string(",") + f.name;
  out += ",layer_metrics_note\n";
  for (const auto& r : records) {
    out += csv_quote(r.name) + "," + csv_quote(r.file) + "," + csv_quote(r.tensor) + "," +
           std::to_string(r.slice) + "," + shape_string(r) + "," + std::to_string(r.rows) + "," +
           std::to_string(r.cols) + "," + r.dtype + "," + r.transform + "," + csv_quote(r.run) + "," +
           std::to_string(r.step) + "," + std::to_string(r.model_params) + "," + r.params_source + "," + r.sharded + "," + std::to_string(r.shards) + "," + r.kind + "," + csv_quote(r.parameter) + "," +
           r.op_type + "," + std::to_string(r.layer) + "," + std::to_string(r.num_layers) + "," + num(r.rel_depth) + "," +
           (r.muon ? "true" : "false") + "," + r.method + "," + r.device + ",";
    const bool ok = analysed(r);
    const auto& s = r.summary;
    out += (ok ? num(r.floor) : "") + "," + std::to_string(r.nonfinite);
    for (double v : {s.sigma_max, s.sigma_min, s.frobenius, s.nuclear, s.cond, s.stable_rank, s.effective_rank})
      out += "," + (ok ? num(v) : "");
    out += "," + (ok ? std::to_string(s.below_floor) : "");
    for (size_t i = 0; i < qs.size(); ++i) {
      if (!ok || i >= s.quantiles.size()) {
        out += ",,,,";
        continue;
      }
      const auto& qv = s.quantiles[i];
      out += "," + num(qv.sigma) + "," + num(qv.rel_max) + "," + num(qv.rel_frob) + "," + num(qv.cond);
    }
    out += layer_metrics_cells(r.layer_metrics, ok) + "\n";
  }
  return out;
}

nlohmann::json summary_json(const std::vector<SpectrumRecord>& records, const std::vector<double>& qs) {
  nlohmann::json matrices = nlohmann::json::array();
  for (const auto& r : records) {
    nlohmann::json m = {{"name", r.name},       {"file", r.file},     {"tensor", r.tensor},
                        {"slice", r.slice},     {"shape", {r.rows, r.cols}},
                        {"tensor_shape", r.tensor_shape},             {"dtype", r.dtype},
                        {"transform", r.transform}, {"nonfinite", r.nonfinite}, {"analysed", analysed(r)},
                        {"run", r.run}, {"step", r.step}, {"model_params", r.model_params}, {"params_source", r.params_source},
                        {"sharded", r.sharded}, {"shards", r.shards}, {"kind", r.kind},
                        {"parameter", r.parameter}, {"op_type", r.op_type}, {"layer", r.layer},
                        {"num_layers", r.num_layers}, {"rel_depth", r.rel_depth}, {"muon", r.muon},
                        {"transposed", r.transposed}};
    if (analysed(r)) {
      const auto& s = r.summary;
      m["method"] = r.method;
      m["device"] = r.device;
      m["floor"] = jnum(r.floor);
      m["sigma_max"] = jnum(s.sigma_max);
      m["sigma_min"] = jnum(s.sigma_min);
      m["frobenius"] = jnum(s.frobenius);
      m["nuclear"] = jnum(s.nuclear);
      m["cond"] = jnum(s.cond);
      m["stable_rank"] = jnum(s.stable_rank);
      m["effective_rank"] = jnum(s.effective_rank);
      m["below_floor"] = s.below_floor;
      nlohmann::json q = nlohmann::json::object();
      for (const auto& qv : s.quantiles)
        q[quantile_label(qv.q)] = {{"sigma", jnum(qv.sigma)}, {"rel_max", jnum(qv.rel_max)},
                                   {"rel_frob", jnum(qv.rel_frob)}, {"cond", jnum(qv.cond)}};
      m["quantiles"] = q;
      add_layer_metrics(m, r.layer_metrics);
    }
    matrices.push_back(std::move(m));
  }
  return {{"muspec_version", kVersion}, {"quantiles", qs}, {"matrices", matrices}};
}

std::string summary_table(const std::vector<SpectrumRecord>& records, const std::vector<double>& qs, size_t max_rows) {
  const double qlow = qs.empty() ? 0.0 : qs.front();
  size_t width = 4;
  auto display = [](const SpectrumRecord& r) {
    std::string d = r.step >= 0 ? r.run + "@" + std::to_string(r.step) + " " : "";
    if (r.kind != "weight") d += r.kind + ":";
    return d + r.name;
  };
  for (const auto& r : records) width = std::max(width, display(r).size());
  width = std::min<size_t>(width, 60);
  char line[512];
  const std::string qcol = "q" + quantile_label(qlow) + "/F";
  std::snprintf(line, sizeof line, "%-*s %12s %-5s %10s %10s %9s %9s %10s %-6s\n", static_cast<int>(width), "name",
                "shape", "dtype", "sigma_max", "cond", "stab_rank", "eff_rank", qcol.c_str(), "method");
  std::string out = line;
  size_t shown = 0;
  for (const auto& r : records) {
    if (max_rows > 0 && shown++ == max_rows) {
      out += "… " + std::to_string(records.size() - max_rows) + " more rows (all of them are in the --summary/--json/-o outputs; --max-rows 0 prints everything)\n";
      break;
    }
    const std::string full = display(r);
    std::string name = full.size() > width ? "…" + full.substr(full.size() - width + 1) : full;
    if (!analysed(r)) {
      std::snprintf(line, sizeof line, "%-*s %12s %-5s  not analysed: %lld non-finite entries\n", static_cast<int>(width),
                    name.c_str(), shape_string(r).c_str(), r.dtype.c_str(), static_cast<long long>(r.nonfinite));
      out += line;
      continue;
    }
    const auto& s = r.summary;
    const double qrel = s.quantiles.empty() ? std::nan("") : s.quantiles.front().rel_frob;
    std::snprintf(line, sizeof line, "%-*s %12s %-5s %10.4g %10.4g %9.4g %9.4g %10.4g %-6s%s\n", static_cast<int>(width),
                  name.c_str(), shape_string(r).c_str(), r.dtype.c_str(), s.sigma_max, s.cond, s.stable_rank,
                  s.effective_rank, qrel, r.method.c_str(), s.below_floor > 0 ? " *" : "");
    out += line;
  }
  return out;
}

}  // namespace muspec
