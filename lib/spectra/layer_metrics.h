// WeightWatcher-comparable layer metrics of one matrix, computed from its singular values.
// Eigenvalues are lambda_i = sigma_i^2 (not divided by N), as WeightWatcher's defaults use.
// Definitions, and where they differ from WeightWatcher's options: docs/layer-metrics.md.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace muspec {

/// Continuous power-law fit p(x) ~ x^-alpha for x >= xmin (Clauset, Shalizi & Newman 2009).
struct PowerLawFit {
  double alpha = 0.0;        ///< MLE: 1 + n / sum ln(x / xmin) over the n values >= xmin
  double xmin = 0.0;         ///< the candidate with the smallest KS distance
  double ks_distance = 0.0;  ///< D = max_i |i/n - (1 - (x_i/xmin)^(1-alpha))| over the tail
  double std_error = 0.0;    ///< (alpha - 1) / sqrt(n)
  int64_t n_tail = 0;        ///< n: values >= xmin
};

/// The CSN fit of ascending positive data. Candidates for xmin are the distinct values that
/// leave at least 3 distinct values in the tail (poweRlaw's estimate_xmin rule for one
/// parameter); the first candidate with the smallest D wins. Per candidate, alpha is O(1) from
/// suffix sums of ln x and D is computed with early exit once it exceeds the best D so far
/// (exact; O(n log n)-like in practice, O(n^2) only in contrived worst cases).
/// Throws UsageError when the data has fewer than 3 distinct values or a value <= 0.
PowerLawFit fit_power_law(const std::vector<double>& ascending);

/// MLE of alpha for the upper-truncated power law p(x) ~ x^-alpha on [xmin, xmax] (every
/// value of `tail_ascending` must lie in that range), and its KS distance against the
/// truncated CDF (same empirical convention as fit_power_law). Unlike the plain power law,
/// alpha may be <= 1 here (the density is normalizable on a bounded range).
struct TruncatedPowerLawFit {
  double alpha = 0.0;
  double ks_distance = 0.0;
};
TruncatedPowerLawFit fit_truncated_power_law(const std::vector<double>& tail_ascending, double xmin, double xmax);

/// Marchenko-Pastur bulk fitted to the eigenvalues as WeightWatcher's mp_fit does (see
/// docs/layer-metrics.md): eigenvalues rescaled to mean 1, a linear-kernel density estimate
/// (bandwidth 0.1) on 1000 points, and the MP density's sigma chosen on WeightWatcher's grid
/// by least squares, then refined in the neighbouring grid cells.
struct MarchenkoPasturFit {
  double sigma = 0.0;     ///< fitted MP scale, in the rescaled (mean 1) units
  double bulk_max = 0.0;  ///< lambda_+ in the units of the input eigenvalues
  double softrank = 0.0;  ///< lambda_+ / lambda_max
  int64_t num_spikes = 0; ///< eigenvalues above lambda_+ plus WeightWatcher's Tracy-Widom margin
};
/// `lambda_ascending`: all min(rows, cols) eigenvalues (zeros included); `rows`, `cols`: the shape.
MarchenkoPasturFit fit_marchenko_pastur(const std::vector<double>& lambda_ascending, int64_t rows, int64_t cols);

/// WeightWatcher's matrix_entropy: -sum p ln p / ln(rank), p = lambda / sum lambda (+1e-10),
/// rank = #{sigma > sigma_max * max(rows, cols) * eps}. NaN when rank < 2.
double matrix_entropy(const std::vector<double>& sigma_ascending, int64_t rows, int64_t cols);

/// All metrics of one matrix. NaN (num_* = -1) where a metric is undefined; `note` says why.
struct LayerMetrics {
  static constexpr double kUndefined = std::numeric_limits<double>::quiet_NaN();
  double alpha = kUndefined, alpha_xmin = kUndefined, alpha_ks_distance = kUndefined, alpha_std_error = kUndefined;
  int64_t num_pl_spikes = -1;  ///< eigenvalues >= alpha_xmin (WeightWatcher's name)
  double alpha_weighted = kUndefined;     ///< alpha * log10(lambda_max)
  double log_norm = kUndefined;           ///< log10(sum lambda)
  double log_spectral_norm = kUndefined;  ///< log10(lambda_max)
  double log_alpha_norm = kUndefined;     ///< log10(sum lambda^alpha)
  double matrix_entropy = kUndefined;
  double mp_softrank = kUndefined;        ///< lambda_+ / lambda_max
  double mp_bulk_max = kUndefined;        ///< lambda_+
  int64_t num_spikes = -1;
  double alpha_truncated = kUndefined;    ///< upper-truncated power law on [alpha_xmin, lambda_max]
  double alpha_truncated_ks_distance = kUndefined;
  std::string note;                       ///< "" when every metric is defined, else the reasons
};

/// One metric as a column of the scan outputs: a real (NaN when undefined) or a count
/// (-1 when undefined). The text column "layer_metrics_note" holds LayerMetrics::note.
struct LayerMetricField {
  const char* name;
  double LayerMetrics::*real;   ///< nullptr for a count
  int64_t LayerMetrics::*count; ///< nullptr for a real
};
/// The metric columns in output order (summary.csv, summary.json, spectra.h5).
const std::vector<LayerMetricField>& layer_metric_fields();

/// The layer metrics of a matrix with ascending singular values `sigma` (all of them) and shape
/// rows x cols. Eigenvalues of singular values below `floor` (the method's reliable floor) and
/// zeros are left out of the power-law fits; the norms, entropy and MP fit use them all.
/// Never throws for finite non-negative input: undefined metrics are NaN with a note.
LayerMetrics compute_layer_metrics(const std::vector<double>& sigma_ascending, int64_t rows, int64_t cols,
                                   double floor);

}  // namespace muspec
