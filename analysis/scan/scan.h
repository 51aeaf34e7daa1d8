// `muspec scan` as a library call: files -> selected matrices -> singular values -> records.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "scan/labeling.h"
#include "scan/shard.h"
#include "spectra/backend.h"
#include "spectra/record.h"

namespace muspec {

class Progress;
class ScanTransport;

struct ScanOptions {
  std::vector<std::string> paths;          ///< files or directories
  std::string include_regex;               ///< keep tensors whose name matches (ECMAScript, search)
  std::string exclude_regex;               ///< drop tensors whose name matches
  std::vector<double> quantiles;           ///< quantile levels in [0, 1]
  SpectralMethod method = SpectralMethod::Auto;
  Device device = Device::Auto;
  InputTransform transform = InputTransform::None;
  int threads = 0;                         ///< 0 = all hardware threads
  int gpu_streams = 0;                     ///< CUDA: matrices in flight at once; 0 = default (8)
  int gpu_index = -1;                      ///< this process among those on its machine (MPI local
                                           ///< rank, srun task): GPU gpu_index % devices; -1 = GPU 0
  int64_t min_dim = 2;                     ///< matrices with min(rows, cols) below this are ignored
  LabelOptions labels;                     ///< --kind, names, runs and steps
  ShardSpec shard;                         ///< --shard I/N: only this part's matrices (scan/shard.h)
  std::string journal;                     ///< scan journal path ("" = none; scan/journal.h)
  /// MPI (scan/scan_cluster.h): the processes sharing this scan; rank 0 hands out the matrices
  /// and ends with every record. Null: one process.
  ScanTransport* cluster = nullptr;
};

/// A tensor (or file) that was not analysed.
struct ScanIssue {
  std::string file;
  std::string tensor;  ///< empty for a whole file
  std::string reason;
};

struct ScanResult {
  std::vector<SpectrumRecord> records;   ///< analysed matrices and NaN/Inf matrices, in file order
  std::vector<ScanIssue> skipped;        ///< matrices or files that should have been analysed but
                                         ///< could not (bad file, bad tensor, NaN/Inf, LAPACK failure)
  std::vector<ScanIssue> ignored;        ///< tensors that are not matrices muspec analyses
                                         ///< (1-D, integer, too small, excluded by name)
  std::string backend;                   ///< description of the spectral backend used
  std::vector<std::string> notices;      ///< one-line notices (e.g. "using the CPU backend: ...")
  std::vector<int64_t> scan_order;       ///< per record: its matrix's index in file order (scan/shard.h)
  std::string fingerprint;               ///< the selected matrices and the options (scan/scan_plan.h)
  int64_t matrices = 0;                  ///< matrices the whole scan selects (all shards)
};

/// Runs a scan. Throws only for problems with the options themselves (bad regex, bad quantile,
/// unavailable device); problems with inputs are reported in the result.
ScanResult run_scan(const ScanOptions& options, Progress* progress = nullptr);

}  // namespace muspec
