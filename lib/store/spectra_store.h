// The spectra store: one HDF5 file holding the SpectrumRecords of a scan, written by
// `muspec scan` and read back by `ns eval --spectra`, `fit` and `recommend`. Researchers open
// the same file with h5py/pandas. Full description: docs/spectra-h5.md.
//
// Layout (format "muspec-spectra", format_version 1):
//   /                      attrs: format = "muspec-spectra", format_version = 1 (int64),
//                                 plus every SpectraFile::attributes entry (UTF-8 string)
//   /spectra/000000 ...    one float64 1-D dataset per record, named by its zero-padded
//                          ordinal (at least 6 digits); data = sigma, ascending. A record that
//                          was not analysed has a zero-length dataset.
//                          attrs: name tensor file dtype transform method device (string);
//                                 slice rows cols nonfinite below_floor (int64);
//                                 tensor_shape (int64[]);
//                                 floor sigma_max sigma_min frobenius nuclear cond stable_rank
//                                 effective_rank (float64);
//                                 quantile_levels quantile_sigma quantile_rel_max
//                                 quantile_rel_frob quantile_cond (float64[], equal lengths)
//                                 layer metrics (docs/layer-metrics.md): float64 reals,
//                                 num_pl_spikes num_spikes (int64, -1..len(sigma)),
//                                 layer_metrics_note (string); absent in older files, then
//                                 recomputed from sigma on reading
//   /summary/<column>      one 1-D dataset per column, one row per record in record order
//                          (row i describes /spectra/<i>); the columns of the scan CSV
//                          (without "shape") plus a bool "analysed"; NaN in the float columns
//                          of unanalysed rows; then transposed (bool) and tensor_shape
//                          ("8x4096x4096"). attrs record_columns = 1 and quantile_levels mark
//                          it complete: the reader then takes the records from it
//                          (store/summary_read.h), falling back to /spectra on any problem.
//   /scan_order            optional int64 1-D dataset, one entry per record: the index of the
//                          record's matrix in the scan's file order. Written by `scan --shard`
//                          for `muspec merge` (docs/cluster.md).
// Strings are variable-length UTF-8 (h5py reads them as str). NaN and inf are stored as is.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "spectra/record.h"

namespace muspec {

inline constexpr const char* kSpectraFormat = "muspec-spectra";
inline constexpr int64_t kSpectraFormatVersion = 1;

struct SpectraFile {
  /// File-level string attributes: muspec_version, created (ISO time), command line,
  /// quantiles (as JSON text), ... The names "format" and "format_version" are reserved.
  std::map<std::string, std::string> attributes;
  std::vector<SpectrumRecord> records;
  /// Empty, or one entry per record (>= 0): see /scan_order above.
  std::vector<int64_t> scan_order;
};

/// Writes atomically (temporary name + rename); on any failure no file and no temporary is
/// left behind and an existing file at `path` is untouched. Throws muspec::Error naming the
/// path (and the record) when a record is inconsistent (see spectrum_record_problem), a string
/// is not valid UTF-8 or holds a NUL byte, an attribute would exceed 64 KiB, or I/O fails.
void write_spectra_h5(const std::string& path, const SpectraFile& file);

struct SpectraReadOptions {
  /// false: a store with a complete /summary (written by this version) leaves the sigma of its
  /// analysed records empty, reading only their summaries (fast; fit needs no more). Stores
  /// read record by record still fill sigma in.
  bool sigma = true;
};

/// Reads a file written by write_spectra_h5. The file is untrusted: throws InputError naming
/// the file (and the dataset, e.g. "/spectra/000003") when it is not HDF5, not a muspec spectra
/// file, of another format_version, or holds a record with missing or mistyped attributes or
/// inconsistent lengths. Unknown extra attributes and objects are ignored.
/// A store whose /summary group is marked complete is read from its columns in one read per
/// column (docs/spectra-h5.md), giving the same records as the record-by-record read.
/// libhdf5 runs on the file only in a forked child, which sends the records back
/// (store/isolated_read.h, store/store_transport.h); a crash or hang there is an InputError.
SpectraFile read_spectra_h5(const std::string& path, const SpectraReadOptions& options = {});

/// Consistency rules a stored record obeys (checked by both the writer and the reader);
/// returns an empty string when the record is fine, else the first problem found:
///  * rows, cols, nonfinite, below_floor and tensor_shape entries >= 0; slice >= -1;
///  * sigma is empty (matrix not analysed) or has min(rows, cols) values, non-negative,
///    ascending, no NaN; sigma is empty when nonfinite > 0; below_floor <= sigma.size();
///  * sigma values are finite;
///  * quantile levels lie in [0, 1] and are distinct; quantile_sigma is >= 0 and not inf,
///    quantile_rel_max and quantile_rel_frob lie in [0, 1] (1e-6 tolerance), quantile_cond >= 1
///    (NaN allowed for all of them, as summarize_spectrum writes for 0 / 0);
///  * when sigma is present: sigma_max, sigma_min, frobenius, nuclear are finite and >= 0,
///    sigma_max / sigma_min are the largest / smallest sigma, frobenius >= sigma_max, cond is
///    sigma_max / sigma_min, and every quantile value is what quantile_linear(sigma, level),
///    sigma_max and frobenius give (relative tolerance 1e-9; x / 0 is inf, 0 / 0 NaN).
///    Unanalysed records (empty sigma) may hold any other summary numbers (NaN included).
std::string spectrum_record_problem(const SpectrumRecord& r);

/// The rules every record read_spectra_h5 returns obeys: spectrum_record_problem, and layer-metric
/// counts between -1 and the number of singular values. With `sigma_read` false (a summaries-only
/// read), a record whose sigma was left empty may count up to min(rows, cols) values below the
/// floor and in its metrics.
std::string read_record_problem(const SpectrumRecord& r, bool sigma_read);

}  // namespace muspec
