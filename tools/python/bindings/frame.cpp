// DataFrames back into records: the columns of summary.csv (what muspec.scan / read_spectra give,
// or pandas.read_csv of the CLI's summary.csv) become SpectrumRecords with their labels and
// summaries, so fit and recommend run on a (filtered) DataFrame exactly as on the store.
#include <cmath>
#include <cstdlib>
#include <map>

#include "bindings.h"
#include "core/error.h"

namespace muspec::python {

namespace {

/// The columns every record needs (the rest of summary.csv is optional).
const std::vector<std::string>& required_columns() {
  static const std::vector<std::string> cols = {"name", "rows", "cols", "run", "step", "kind", "parameter", "op_type",
                                                "muon", "frobenius"};
  return cols;
}

bool is_blank(const py::handle& v) {
  if (v.is_none()) return true;
  if (py::isinstance<py::float_>(v)) return std::isnan(v.cast<double>());
  return false;
}

class Columns {
 public:
  explicit Columns(const py::dict& columns) {
    for (const auto& item : columns) cols_[item.first.cast<std::string>()] = py::list(py::reinterpret_borrow<py::object>(item.second));
    for (const auto& c : required_columns())
      if (!cols_.count(c))
        throw UsageError("DataFrame: no column '" + c + "' (expected the columns of summary.csv, as muspec.scan and "
                         "muspec.read_spectra give)");
    rows_ = cols_.at("name").size();
    for (const auto& [name, list] : cols_)
      if (list.size() != rows_) throw UsageError("DataFrame: column '" + name + "' has another length");
  }
  size_t size() const { return rows_; }
  bool has(const std::string& c) const { return cols_.count(c) > 0; }
  const std::map<std::string, py::list>& all() const { return cols_; }

  std::string text(const std::string& c, size_t i, const std::string& fallback = "") const {
    const auto it = cols_.find(c);
    if (it == cols_.end()) return fallback;
    const py::handle v = it->second[i];
    return is_blank(v) ? fallback : py::str(v).cast<std::string>();
  }
  double real(const std::string& c, size_t i, double fallback = NAN) const {
    const auto it = cols_.find(c);
    if (it == cols_.end()) return fallback;
    const py::handle v = it->second[i];
    if (v.is_none()) return fallback;
    try {
      return py::float_(py::reinterpret_borrow<py::object>(v)).cast<double>();
    } catch (const py::error_already_set&) {
      throw UsageError("DataFrame: column '" + c + "', row " + std::to_string(i) + ": expected a number, got '" +
                       py::str(v).cast<std::string>() + "'");
    }
  }
  int64_t integer(const std::string& c, size_t i, int64_t fallback) const {
    const double v = real(c, i, NAN);
    if (!std::isfinite(v)) return fallback;
    if (v != std::floor(v) || std::abs(v) > 9.0e15)
      throw UsageError("DataFrame: column '" + c + "', row " + std::to_string(i) + ": expected an integer");
    return static_cast<int64_t>(v);
  }
  bool flag(const std::string& c, size_t i) const {
    const auto it = cols_.find(c);
    if (it == cols_.end()) return false;
    const py::handle v = it->second[i];
    if (py::isinstance<py::str>(v)) {
      const std::string s = v.cast<std::string>();
      if (s == "true" || s == "True") return true;
      if (s == "false" || s == "False" || s.empty()) return false;
      throw UsageError("DataFrame: column '" + c + "', row " + std::to_string(i) + ": expected true or false, got '" + s + "'");
    }
    return !is_blank(v) && py::bool_(py::reinterpret_borrow<py::object>(v)).cast<bool>();
  }

 private:
  std::map<std::string, py::list> cols_;
  size_t rows_ = 0;
};

/// The quantile levels of the columns q<level>_rel_frob, in column order of the given names.
std::vector<std::pair<double, std::string>> quantile_columns(const py::list& names) {
  std::vector<std::pair<double, std::string>> out;
  const std::string suffix = "_rel_frob";
  for (const auto& n : names) {
    const std::string s = py::str(n).cast<std::string>();
    if (s.size() <= suffix.size() + 1 || s[0] != 'q' || s.compare(s.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    const std::string label = s.substr(1, s.size() - 1 - suffix.size());
    char* end = nullptr;
    const double q = std::strtod(label.c_str(), &end);
    if (end && *end == '\0' && q >= 0.0 && q <= 1.0) out.emplace_back(q, "q" + label);
  }
  return out;
}

SpectralSummary summary_of(const Columns& c, size_t i, const std::vector<std::pair<double, std::string>>& qs) {
  SpectralSummary s;
  s.sigma_max = c.real("sigma_max", i);
  s.sigma_min = c.real("sigma_min", i);
  s.frobenius = c.real("frobenius", i);
  s.nuclear = c.real("nuclear", i);
  s.cond = c.real("cond", i);
  s.stable_rank = c.real("stable_rank", i);
  s.effective_rank = c.real("effective_rank", i);
  s.below_floor = c.integer("below_floor", i, 0);
  for (const auto& [level, prefix] : qs) {
    QuantileValue v;
    v.q = level;
    v.sigma = c.real(prefix + "_sigma", i);
    v.rel_max = c.real(prefix + "_rel_max", i);
    v.rel_frob = c.real(prefix + "_rel_frob", i);
    v.cond = c.real(prefix + "_cond", i);
    s.quantiles.push_back(v);
  }
  return s;
}

}  // namespace

std::vector<SpectrumRecord> records_from_columns(const py::dict& columns, const py::list& names, const py::object& sigma) {
  const Columns c(columns);
  const auto qs = quantile_columns(names);
  if (!sigma.is_none() && py::len(sigma) != c.size())
    throw UsageError("sigma: " + std::to_string(py::len(sigma)) + " arrays for " + std::to_string(c.size()) + " rows");
  std::vector<SpectrumRecord> out(c.size());
  for (size_t i = 0; i < c.size(); ++i) {
    SpectrumRecord& r = out[i];
    r.name = c.text("name", i);
    r.tensor = c.text("tensor", i, r.name);
    r.slice = c.integer("slice", i, -1);
    r.file = c.text("file", i);
    r.rows = c.integer("rows", i, 0);
    r.cols = c.integer("cols", i, 0);
    r.tensor_shape = {r.rows, r.cols};
    r.dtype = c.text("dtype", i);
    r.transform = c.text("transform", i, "none");
    r.run = c.text("run", i);
    r.step = c.integer("step", i, -1);
    r.model_params = c.integer("model_params", i, 0);
    r.params_source = c.text("params_source", i);
    r.sharded = c.text("sharded", i);
    r.shards = c.integer("shards", i, 0);
    r.kind = c.text("kind", i, "weight");
    r.parameter = c.text("parameter", i, r.name);
    r.op_type = c.text("op_type", i, "other");
    r.layer = c.integer("layer", i, -1);
    r.num_layers = c.integer("num_layers", i, 0);
    r.rel_depth = c.real("rel_depth", i, -1.0);
    r.muon = c.flag("muon", i);
    r.method = c.text("method", i);
    r.device = c.text("device", i);
    r.floor = c.real("floor", i, 0.0);
    r.nonfinite = c.integer("nonfinite", i, 0);
    const bool analysed = r.nonfinite == 0 && std::isfinite(c.real("frobenius", i));
    if (!analysed) continue;  // no summary: fit and recommend count it as not analysed
    r.summary = summary_of(c, i, qs);
    if (!sigma.is_none()) {
      r.sigma = py::cast<std::vector<double>>(py::list(sigma)[i]);
      std::sort(r.sigma.begin(), r.sigma.end());
    }
  }
  return out;
}

}  // namespace muspec::python
