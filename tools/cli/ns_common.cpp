#include "cli/ns_common.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>

#include "cli/app.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/tensor.h"
#include "io/bus_guard.h"
#include "io/discover.h"
#include "io/tensor_source.h"
#include "scan/file_watch.h"
#include "store/spectra_store.h"

namespace muspec::cli {

using nlohmann::json;

namespace {

std::string cell(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number()) return format_g(v.get<double>(), 17);
  return "";
}

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

std::vector<NsSpectrum> read_sigma_file(const std::string& path, std::vector<std::string>& skipped) {
  std::vector<NsSpectrum> out;
  if (!is_tensor_file_name(path)) {
    NsSpectrum s;
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
    NsSpectrum s;
    s.name = src->entries().size() == 1 ? path : path + ":" + e.name;
    s.sigma.resize(static_cast<size_t>(m.cols));
    to_dense_row_major(m, InputTransform::None, s.sigma.data());
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

std::string NsTable::csv() const {
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

json NsTable::as_json() const {
  json arr = json::array();
  for (const auto& r : rows) {
    json o = json::object();
    for (size_t i = 0; i < r.size(); ++i) o[columns[i]] = r[i];
    arr.push_back(o);
  }
  return arr;
}

void NsTable::print(std::ostream& os) const {
  std::vector<size_t> w(columns.size());
  auto shown = [](const json& v) { return v.is_number_float() ? format_g(v.get<double>(), 5) : cell(v); };
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

void NsTable::write(const std::string& path, const json& header) const {
  if (ends_with(path, ".json")) {
    json j = header;
    j["matrices"] = as_json();
    write_file_atomically(path, j.dump(2) + "\n");
  } else {
    write_file_atomically(path, csv());
  }
}

std::string shape_text(int64_t rows, int64_t cols) {
  return rows > 0 ? std::to_string(rows) + "x" + std::to_string(cols) : "-";
}

std::vector<NsSpectrum> load_spectra(const std::string& spectra_h5, const std::string& sigma_file,
                                     std::vector<std::string>& skipped, const char* command) {
  if (spectra_h5.empty() == sigma_file.empty())
    throw UsageError(std::string(command) + ": give exactly one of --spectra or --sigma");
  if (!sigma_file.empty()) return read_sigma_file(sigma_file, skipped);
  std::vector<NsSpectrum> spectra;
  const SpectraFile f = read_spectra_h5(spectra_h5);
  for (const SpectrumRecord& r : f.records) {
    if (r.sigma.empty()) {
      skipped.push_back(r.name + ": not analysed in the scan" +
                        (r.nonfinite > 0 ? " (" + std::to_string(r.nonfinite) + " NaN/Inf entries)" : ""));
      continue;
    }
    spectra.push_back(NsSpectrum{r.name, r.rows, r.cols, r.sigma, r.summary.frobenius});
  }
  return spectra;
}

void for_each_matrix(const std::vector<std::string>& paths, const std::string& include_text, int64_t max_elements,
                     std::vector<std::string>& skipped, const MatrixFn& fn) {
  std::optional<std::regex> include;
  if (!include_text.empty()) {
    try {
      include.emplace(include_text);
    } catch (const std::regex_error& e) {
      throw UsageError("--include: invalid regex '" + include_text + "': " + e.what());
    }
  }
  const DiscoveredFiles files = discover_tensor_files(paths);
  skipped.insert(skipped.end(), files.problems.begin(), files.problems.end());
  for (const std::string& path : files.files) {
    std::unique_ptr<TensorSource> src;
    try {
      src = open_tensor_file(path);
    } catch (const Error& e) {
      skipped.push_back(e.what());
      continue;
    }
    FileWatch watch;  // a checkpoint rewritten or truncated while it is read (issue 14)
    watch.remember(path);
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
          if (m.rows * m.cols > max_elements) {
            skipped.push_back(path + ": " + name + ": " + shape_text(m.rows, m.cols) + " is larger than --max-elements " +
                              std::to_string(max_elements));
            continue;
          }
          std::vector<double> x(static_cast<size_t>(m.rows * m.cols));
          const uint64_t faults_before = bus_faults_on_this_thread();
          const DenseConversion dc = to_dense_row_major(m, InputTransform::None, x.data());
          if (bus_faults_on_this_thread() != faults_before) {
            skipped.push_back(path + ": " + name + ": " + kTruncatedDuringScan);
            continue;
          }
          if (const std::string why = watch.change(path); !why.empty()) {
            skipped.push_back(path + ": " + name + ": " + why);
            continue;
          }
          if (dc.nonfinite > 0) {
            skipped.push_back(path + ": " + name + ": " + std::to_string(dc.nonfinite) + " NaN/Inf entries");
            continue;
          }
          if (!(dc.frobenius > 0.0)) {
            skipped.push_back(path + ": " + name + ": all-zero matrix");
            continue;
          }
          fn(name, m.rows, m.cols, x, path + ": " + name);
        }
      } catch (const Error& err) {
        skipped.push_back(std::string(err.what()));
      }
    }
  }
}

}  // namespace muspec::cli
