// muspec ns eval  --schedule S [--steps K] (--spectra spectra.h5 | --sigma FILE) [--band LO,HI]
// muspec ns simulate --schedule S [--steps K] [--precision f64|f32|bf16] FILES...
// (docs/ns.md). Both print a per-matrix table and can write it as CSV or JSON (-o).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "cli/app.h"
#include "cli/commands.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/tensor.h"
#include "io/discover.h"
#include "io/tensor_source.h"
#include "ns/catalog.h"
#include "ns/quality.h"
#include "ns/simulate.h"
#include "spectra/backend.h"
#include "store/spectra_store.h"

namespace muspec::cli {

namespace {

using namespace muspec::ns;
using nlohmann::json;

std::string g(double x, int digits = 6) { return format_g(x, digits); }

// One output table: column names and rows of JSON values (numbers or strings).
struct Table {
  std::vector<std::string> columns;
  std::vector<std::vector<json>> rows;

  static std::string cell(const json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
    if (v.is_number()) return g(v.get<double>(), 17);
    return "";
  }
  std::string csv() const {
    auto quote = [](const std::string& s) {
      if (s.find_first_of(",\"\n") == std::string::npos) return s;
      std::string q = "\"";
      for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
      return q + "\"";
    };
    std::string out;
    for (size_t i = 0; i < columns.size(); ++i) out += (i ? "," : "") + columns[i];
    out += "\n";
    for (const auto& r : rows) {
      for (size_t i = 0; i < r.size(); ++i) out += (i ? "," : "") + quote(cell(r[i]));
      out += "\n";
    }
    return out;
  }
  json as_json() const {
    json arr = json::array();
    for (const auto& r : rows) {
      json o = json::object();
      for (size_t i = 0; i < r.size(); ++i) o[columns[i]] = r[i];
      arr.push_back(o);
    }
    return arr;
  }
  void print(std::ostream& os) const {
    std::vector<size_t> w(columns.size());
    auto shown = [](const json& v) { return v.is_number_float() ? g(v.get<double>(), 5) : cell(v); };
    for (size_t i = 0; i < columns.size(); ++i) w[i] = columns[i].size();
    for (const auto& r : rows)
      for (size_t i = 0; i < r.size(); ++i) w[i] = std::max(w[i], std::min<size_t>(shown(r[i]).size(), 60));
    auto line = [&](const std::vector<std::string>& cells) {
      for (size_t i = 0; i < cells.size(); ++i) {
        char buf[96];
        std::snprintf(buf, sizeof buf, i == 0 ? "%-*s" : "  %*s", static_cast<int>(w[i]), cells[i].c_str());
        os << buf;
      }
      os << "\n";
    };
    line(columns);
    for (const auto& r : rows) {
      std::vector<std::string> cells;
      for (const auto& v : r) cells.push_back(shown(v));
      line(cells);
    }
  }
  void write(const std::string& path, const json& header) const {
    const bool as_json_file = ends_with(path, ".json");
    if (as_json_file) {
      json j = header;
      j["matrices"] = as_json();
      write_file_atomically(path, j.dump(2) + "\n");
    } else {
      write_file_atomically(path, csv());
    }
  }
};

std::string shape_text(int64_t rows, int64_t cols) {
  return rows > 0 ? std::to_string(rows) + "x" + std::to_string(cols) : "-";
}

// ---------------------------------------------------------------- eval
struct EvalArgs {
  std::string schedule, spectra, sigma, band, output;
  std::optional<int> steps;
  bool quiet = false;
};

struct Spectrum {
  std::string name;
  int64_t rows = 0, cols = 0;
  std::vector<double> sigma;
  double frobenius = NAN;
};

// Whitespace-separated numbers; '#' starts a comment.
std::vector<double> read_text_sigma(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw InputError(path, "", "cannot open file");
  std::vector<double> v;
  std::string line;
  int lineno = 0;
  while (std::getline(f, line)) {
    ++lineno;
    const size_t hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    std::istringstream ss(line);
    std::string tok;
    while (ss >> tok) {
      try {
        size_t used = 0;
        const double x = std::stod(tok, &used);
        if (used != tok.size()) throw std::invalid_argument(tok);
        v.push_back(x);
      } catch (const std::logic_error&) {
        throw InputError(path, "", "line " + std::to_string(lineno) + ": '" + tok + "' is not a number");
      }
    }
  }
  return v;
}

std::vector<Spectrum> read_sigma_file(const std::string& path, std::vector<std::string>& skipped) {
  std::vector<Spectrum> out;
  if (!is_tensor_file_name(path)) {
    Spectrum s;
    s.name = path;
    s.sigma = read_text_sigma(path);
    out.push_back(std::move(s));
    return out;
  }
  // .npy / .npz / .safetensors: every 1-D float tensor is one spectrum.
  const auto src = open_tensor_file(path);
  for (size_t i = 0; i < src->entries().size(); ++i) {
    const TensorEntry& e = src->entries()[i];
    if (e.shape.size() != 1 || !e.dtype || !dtype_is_decodable_float(*e.dtype)) {
      skipped.push_back(path + ": tensor '" + e.name + "': not a 1-D float array of singular values");
      continue;
    }
    const TensorHandle h = src->load(i);
    MatrixView m;
    m.dtype = h.view.dtype;
    m.byte_order = h.view.byte_order;
    m.rows = 1;
    m.cols = h.view.shape[0];
    m.col_stride = h.view.strides[0];
    m.base = h.view.data;
    Spectrum s;
    s.name = src->entries().size() == 1 ? path : path + ":" + e.name;
    s.sigma.resize(static_cast<size_t>(m.cols));
    to_dense_row_major(m, InputTransform::None, s.sigma.data());
    out.push_back(std::move(s));
  }
  return out;
}

int run_eval(const EvalArgs& a) {
  if (a.spectra.empty() == a.sigma.empty()) throw UsageError("ns eval: give exactly one of --spectra or --sigma");
  const Schedule s = resolve_schedule(a.schedule);
  const int k = s.resolve_steps(a.steps);
  const Band band = a.band.empty() ? s.target_band() : parse_band(a.band);

  std::vector<std::string> skipped;
  std::vector<Spectrum> spectra;
  if (!a.spectra.empty()) {
    const SpectraFile f = read_spectra_h5(a.spectra);
    for (const SpectrumRecord& r : f.records) {
      if (r.sigma.empty()) {
        skipped.push_back(r.name + ": not analysed in the scan" +
                          (r.nonfinite > 0 ? " (" + std::to_string(r.nonfinite) + " NaN/Inf entries)" : ""));
        continue;
      }
      spectra.push_back(Spectrum{r.name, r.rows, r.cols, r.sigma, r.summary.frobenius});
    }
  } else {
    spectra = read_sigma_file(a.sigma, skipped);
  }

  const auto t = threshold(s, k, band);
  Table table;
  table.columns = {"name", "shape", "count", "s_min", "s_max", "out_min", "out_max", "in_band", "band_fraction",
                   "energy_fraction", "worst_deviation", "below_threshold"};
  for (const Spectrum& sp : spectra) {
    SpectrumQuality q;
    try {
      q = evaluate_spectrum(s, k, sp.sigma, band, sp.frobenius);
    } catch (const UsageError& e) {
      skipped.push_back(sp.name + ": " + e.what());
      continue;
    }
    int64_t below = 0;
    for (double v : sp.sigma) below += (t && v / q.frobenius < *t) ? 1 : 0;
    table.rows.push_back({sp.name, shape_text(sp.rows, sp.cols), q.count, q.input_range.lo, q.input_range.hi,
                          q.output_range.lo, q.output_range.hi, q.in_band, q.band_fraction, q.energy_fraction,
                          q.worst_deviation, below});
  }
  for (const auto& m : skipped) std::cerr << "muspec: skipped " << m << "\n";
  if (table.rows.empty()) throw Error("ns eval: no spectrum could be evaluated; no output written");

  const json header = {{"schedule", s.name}, {"steps", k}, {"band", {band.lo, band.hi}},
                       {"threshold", t ? json(*t) : json(nullptr)}};
  if (!a.output.empty()) table.write(a.output, header);
  if (!a.quiet) {
    std::cout << "schedule " << s.name << ", " << k << " steps, band [" << g(band.lo) << ", " << g(band.hi)
              << "]; threshold s* = " << (t ? g(*t, 4) : std::string("none")) << " (s = sigma/||G||_F)\n";
    table.print(std::cout);
  }
  return skipped.empty() ? kExitOk : kExitSkipped;
}

// ---------------------------------------------------------------- simulate
struct SimulateArgs {
  std::string schedule, precision = "f64", output, include, device = "cpu";
  std::vector<std::string> paths;
  std::optional<int> steps;
  int64_t max_elements = int64_t{1} << 22;
  bool quiet = false;
};

int run_simulate(const SimulateArgs& a) {
  const Schedule s = resolve_schedule(a.schedule);
  const int k = s.resolve_steps(a.steps);
  const Precision prec = parse_precision(a.precision);
  const Device device = parse_device(a.device);
  if (device == Device::Auto) throw UsageError("ns simulate --device: cpu or cuda");
  if (device == Device::Cuda && cuda_device_count() == 0)
    make_backend(BackendOptions{Device::Cuda});  // throws the clear "built without CUDA" / "no device" error
  std::optional<std::regex> include;
  if (!a.include.empty()) {
    try {
      include.emplace(a.include);
    } catch (const std::regex_error& e) {
      throw UsageError("--include: invalid regex '" + a.include + "': " + e.what());
    }
  }
  const DiscoveredFiles files = discover_tensor_files(a.paths);
  std::vector<std::string> skipped = files.problems;
  auto backend = make_backend(BackendOptions{Device::Cpu});

  Table table;
  table.columns = {"name", "shape", "count", "predicted_min", "predicted_max", "measured_min", "measured_max",
                   "max_abs_error", "max_rel_error", "rms_error"};
  for (const std::string& path : files.files) {
    std::unique_ptr<TensorSource> src;
    try {
      src = open_tensor_file(path);
    } catch (const Error& e) {
      skipped.push_back(e.what());
      continue;
    }
    for (size_t i = 0; i < src->entries().size(); ++i) {
      const TensorEntry& e = src->entries()[i];
      if (e.shape.size() < 2 || !e.dtype || !dtype_is_decodable_float(*e.dtype)) continue;  // not a matrix
      if (include && !std::regex_search(e.name, *include)) continue;
      try {
        const TensorHandle h = src->load(i);
        const int64_t count = matrix_count(h.view);
        for (int64_t j = 0; j < count; ++j) {
          const MatrixView m = matrix_of(h.view, j);
          const std::string name = e.name + (h.view.rank() > 2 ? "[" + std::to_string(j) + "]" : "");
          if (m.rows == 0 || m.cols == 0) continue;
          if (m.rows * m.cols > a.max_elements) {
            skipped.push_back(path + ": " + name + ": " + shape_text(m.rows, m.cols) + " is larger than --max-elements " +
                              std::to_string(a.max_elements));
            continue;
          }
          std::vector<double> x(static_cast<size_t>(m.rows * m.cols));
          const DenseConversion dc = to_dense_row_major(m, InputTransform::None, x.data());
          if (dc.nonfinite > 0) {
            skipped.push_back(path + ": " + name + ": " + std::to_string(dc.nonfinite) + " NaN/Inf entries");
            continue;
          }
          if (!(dc.frobenius > 0.0)) {
            skipped.push_back(path + ": " + name + ": all-zero matrix");
            continue;
          }
          const Agreement ag = simulate_matrix(s, k, prec, x.data(), m.rows, m.cols, *backend, path + ": " + name, device);
          table.rows.push_back({name, shape_text(m.rows, m.cols), ag.count, ag.predicted.front(), ag.predicted.back(),
                                ag.measured.front(), ag.measured.back(), ag.max_abs_error, ag.max_rel_error,
                                ag.rms_error});
        }
      } catch (const Error& err) {
        skipped.push_back(std::string(err.what()));
      }
    }
  }
  for (const auto& m : skipped) std::cerr << "muspec: skipped " << m << "\n";
  if (table.rows.empty()) throw Error("ns simulate: no matrix was simulated; no output written");
  const json header = {{"schedule", s.name}, {"steps", k}, {"precision", precision_name(prec)}, {"device", a.device}};
  if (!a.output.empty()) table.write(a.output, header);
  if (!a.quiet) {
    std::cout << "schedule " << s.name << ", " << k << " steps, " << precision_name(prec) << " on " << a.device
              << ": output singular values (LAPACK) against the float64 scalar map\n";
    table.print(std::cout);
  }
  return skipped.empty() ? kExitOk : kExitSkipped;
}

}  // namespace

Action setup_ns_eval(CLI::App& c) {
  auto a = std::make_shared<EvalArgs>();
  c.add_option("-s,--schedule", a->schedule, "built-in name or schedule file")->required();
  c.add_option("-k,--steps", a->steps, "number of NS steps (default: the schedule's)");
  c.add_option("--spectra", a->spectra, "spectra file written by `muspec scan -o`");
  c.add_option("--sigma", a->sigma,
               "singular values of one matrix: a text file (whitespace-separated) or .npy/.npz/.safetensors "
               "(each 1-D tensor is one spectrum)");
  c.add_option("--band", a->band, "target band LO,HI (default: the schedule family's, docs/ns.md)");
  c.add_option("-o,--output", a->output, "write the table as CSV (or JSON when the name ends in .json)");
  c.add_flag("-q,--quiet", a->quiet, "no table on the terminal");
  return [a] { return run_eval(*a); };
}

Action setup_ns_simulate(CLI::App& c) {
  auto a = std::make_shared<SimulateArgs>();
  c.add_option("paths", a->paths, "tensor files (.safetensors, .npy, .npz) or directories")->required();
  c.add_option("-s,--schedule", a->schedule, "built-in name or schedule file")->required();
  c.add_option("-k,--steps", a->steps, "number of NS steps (default: the schedule's)");
  c.add_option("--precision", a->precision, "f64 | f32 | bf16 (emulated: every product rounded to bf16)")
      ->capture_default_str();
  c.add_option("--device", a->device, "cpu (Eigen; bf16 emulated) | cuda (cuBLAS; bf16 storage, fp32 accumulation)")
      ->capture_default_str();
  c.add_option("--include", a->include, "only tensors whose name matches this regex");
  c.add_option("--max-elements", a->max_elements, "skip matrices with more entries than this (CPU time)")
      ->capture_default_str();
  c.add_option("-o,--output", a->output, "write the table as CSV (or JSON when the name ends in .json)");
  c.add_flag("-q,--quiet", a->quiet, "no table on the terminal");
  return [a] { return run_simulate(*a); };
}

}  // namespace muspec::cli
