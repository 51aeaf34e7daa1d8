// Shared by the `muspec ns eval|simulate|threshold` commands (cmd_ns_eval.cpp, cmd_ns_power.cpp):
// the per-matrix output table, spectra inputs (--spectra / --sigma) and the matrix walk over
// tensor files.
#pragma once

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

namespace muspec::cli {

/// One output table: column names and rows of JSON values (numbers or strings).
struct NsTable {
  std::vector<std::string> columns;
  std::vector<std::vector<nlohmann::json>> rows;

  std::string csv() const;
  nlohmann::json as_json() const;  ///< an array of {column: value} objects
  void print(std::ostream& os) const;
  /// CSV, or JSON (header + "matrices") when the name ends in .json; atomically.
  void write(const std::string& path, const nlohmann::json& header) const;
};

std::string shape_text(int64_t rows, int64_t cols);

/// The singular values of one matrix.
struct NsSpectrum {
  std::string name;
  int64_t rows = 0, cols = 0;
  std::vector<double> sigma;
  double frobenius = NAN;
};

/// Exactly one of `spectra_h5` (muspec scan -o) or `sigma_file` (text, .npy/.npz/.safetensors
/// with one 1-D tensor per spectrum). Unusable entries are appended to `skipped`.
std::vector<NsSpectrum> load_spectra(const std::string& spectra_h5, const std::string& sigma_file,
                                     std::vector<std::string>& skipped, const char* command);

/// Calls `fn(name, rows, cols, dense row-major float64)` for every finite, non-zero matrix in
/// `paths` (files or directories) whose tensor name matches `include` (empty: all) and that has
/// at most `max_elements` entries. Problems (unreadable files, NaN, too large, errors thrown
/// by fn) are appended to `skipped`.
using MatrixFn = std::function<void(const std::string& name, int64_t rows, int64_t cols, std::vector<double>& x,
                                    const std::string& label)>;
void for_each_matrix(const std::vector<std::string>& paths, const std::string& include, int64_t max_elements,
                     std::vector<std::string>& skipped, const MatrixFn& fn);

}  // namespace muspec::cli
