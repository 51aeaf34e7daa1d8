// One analysed matrix: where it came from, how it was computed, and its spectrum.
// This is the unit that scans produce, the spectra store persists, and analyses consume.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "spectra/layer_metrics.h"
#include "spectra/summary.h"

namespace muspec {

struct SpectrumRecord {
  // ---- identity ----
  std::string name;         ///< display name: tensor name, plus "[k]" for slice k of a stack
  std::string tensor;       ///< tensor name as stored in the file
  int64_t slice = -1;       ///< index into the leading dims of a >2-D tensor; -1 for a matrix
  std::string file;         ///< file holding the tensor
  int64_t rows = 0, cols = 0;             ///< matrix shape as analysed
  std::vector<int64_t> tensor_shape;      ///< full shape of the stored tensor
  std::string dtype;        ///< stored dtype, safetensors spelling ("BF16")
  std::string transform;    ///< "none" or "sign"
  // ---- place in a training run (docs/scan-output.md) ----
  std::string run;          ///< run name (manifest, else the run directory's name)
  int64_t step = -1;        ///< training step; -1 when unknown
  int64_t model_params = 0; ///< parameters of the model this matrix belongs to; 0 when unknown
  std::string params_source;  ///< how model_params was found: "manifest", "weights" (counted from the
                              ///< step's weight files), either with ":non-embedding"; "" when unknown
  std::string sharded;      ///< the sharded checkpoint it was pieced together from ("dcp", ...); "" for a plain file
  int64_t shards = 0;       ///< shard files of that checkpoint; 0 for a plain file
  std::string kind = "weight";  ///< weight, momentum, exp_avg, exp_avg_sq, or another state key
  std::string parameter;    ///< parameter name (canonical); "state[<id>]" when it could not be recovered
  std::string op_type = "other";  ///< q, k, v, qkv, o, gate, up, gate_up, down, embed, head, norm, other
  int64_t layer = -1;       ///< block index; -1 outside the blocks
  int64_t num_layers = 0;   ///< blocks in the model; 0 when unknown
  double rel_depth = -1.0;  ///< layer / (num_layers - 1); -1 when unknown or outside the blocks
  bool muon = false;        ///< a hidden matrix that Muon would orthogonalize
  bool transposed = false;  ///< stored (in, out) and analysed as (out, in) (GPT-2 Conv1D)
  // ---- computation ----
  std::string method;       ///< "gram" or "svd" (the method that produced sigma)
  std::string device;       ///< "cpu" or "cuda"
  double floor = 0.0;       ///< reliable floor in units of sigma; values below are flagged
  int64_t nonfinite = 0;    ///< NaN/Inf entries; when > 0 the matrix was not analysed
  // ---- results ----
  std::vector<double> sigma;  ///< all min(rows, cols) singular values, ascending
  SpectralSummary summary;
  LayerMetrics layer_metrics;  ///< WeightWatcher-comparable metrics (docs/layer-metrics.md)
};

}  // namespace muspec
