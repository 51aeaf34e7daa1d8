// Sample records and comparisons shared by the spectra store's tests (test_store*.cpp).
#pragma once

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "record_compare.h"
#include "spectra/summary.h"
#include "store/spectra_store.h"

namespace muspec_test::store_samples {

using muspec::SpectraFile;
using muspec::SpectrumRecord;

inline const double kInf = std::numeric_limits<double>::infinity();
inline const double kNaN = std::numeric_limits<double>::quiet_NaN();

using muspec_test::same_bits;
/// Equal bits, or both NaN (text round trips through Python need not keep NaN's sign bit).
inline bool same_value(double a, double b) { return (std::isnan(a) && std::isnan(b)) || same_bits(a, b); }

inline SpectrumRecord analysed(const std::string& name, int64_t rows, int64_t cols,
                        std::vector<double> sigma, const std::vector<double>& levels) {
  SpectrumRecord r;
  r.name = name;
  r.tensor = name;
  r.file = "model-00001-of-00002.safetensors";
  r.rows = rows;
  r.cols = cols;
  r.tensor_shape = {rows, cols};
  r.dtype = "BF16";
  r.transform = "none";
  r.method = "svd";
  r.device = "cpu";
  double frob2 = 0;
  for (double s : sigma) frob2 += s * s;
  r.floor = 1e-12;
  r.summary = muspec::summarize_spectrum(sigma, std::sqrt(frob2), r.floor, levels);
  r.sigma = std::move(sigma);
  return r;
}

/// Varied records: inf cond, an unanalysed matrix with NaN summary, unicode and '/' in names,
/// a slice of a stack, a repeated tensor name, a 0 x n matrix.
inline SpectraFile sample_file() {
  SpectraFile f;
  f.attributes = {{"muspec_version", "0.1.0"},
                  {"created", "2024-05-01T12:00:00Z"},
                  {"command", "muspec scan 'a b' --quantiles=0,0.5,1 --label=ü"},
                  {"quantiles", "[0.0,0.5,1.0]"},
                  {"empty", ""}};
  // sigma_min = 0: cond and the q=0 quantile condition number are inf.
  f.records.push_back(analysed("model.layers.0.mlp.up_proj.weight", 5, 3, {0.0, 1.0, 2.0},
                               {0.0, 0.5, 1.0}));
  SpectrumRecord bad;  // not analysed: non-finite entries
  bad.name = "层.0/注意力 — ω 🚀";
  bad.tensor = "a/b/c";
  bad.file = "dir/with/slashes.pt";
  bad.rows = 7;
  bad.cols = 9;
  bad.tensor_shape = {7, 9};
  bad.dtype = "F32";
  bad.transform = "none";
  bad.method = "gram";
  bad.device = "cuda";
  bad.nonfinite = 4;
  bad.floor = kNaN;
  bad.summary.sigma_max = kNaN;
  bad.summary.sigma_min = -0.0;
  bad.summary.cond = -kInf;
  f.records.push_back(bad);
  SpectrumRecord stack = analysed("experts.w[3]", 4, 2, {1e-300, 3.5},
                                  muspec::default_quantiles());
  stack.tensor = "experts.w";
  stack.slice = 3;
  stack.tensor_shape = {8, 4, 2};
  stack.transform = "sign";
  stack.method = "gram";
  stack.device = "cuda";
  stack.floor = 0.25;
  stack.summary.below_floor = 1;
  f.records.push_back(stack);
  SpectrumRecord again = analysed("model.layers.0.mlp.up_proj.weight", 2, 2, {0.5, 0.5}, {0.5});
  again.file = "other/model.safetensors";
  f.records.push_back(again);
  SpectrumRecord empty;  // 0 x 5: nothing to analyse, no quantiles
  empty.name = empty.tensor = "zero";
  empty.cols = 5;
  empty.tensor_shape = {0, 5};
  f.records.push_back(empty);
  return f;
}


inline bool analysed(const SpectrumRecord& r) { return r.nonfinite == 0 && !r.sigma.empty(); }

/// What /summary holds for a floating-point summary value: NaN for a matrix not analysed.
inline double summary_value(const SpectrumRecord& r, double v) { return analysed(r) ? v : kNaN; }

}  // namespace muspec_test::store_samples
