// What each tensor of a scan is: weight or optimizer state, which parameter, which operator,
// which layer, which run and step. Turns files into the labelled matrices of issue 3.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "scan/checkpoint_context.h"
#include "io/tensor_source.h"
#include "model/naming.h"

namespace muspec {

struct LabelOptions {
  std::string kind = "auto";         ///< auto | weights | momentum | exp_avg | exp_avg_sq | all
  std::string recipe;                ///< name-recovery recipe override ("" = manifest or none)
  std::string family;                ///< naming family hint ("" = manifest/config/auto)
  std::vector<OpRule> op_rules;      ///< user overrides, tried first
  std::vector<RunManifest> sweep;    ///< --manifest entries
  std::string param_map;             ///< --param-map FILE: JSON list of names in optimizer id order
  std::string param_count = "total"; ///< total | non-embedding (when no manifest states it)
  int layers = 0;                    ///< --layers N: blocks in the model (0 = from files, else inferred)
  bool split_fused = false;          ///< analyse q/k/v and gate/up parts of fused 2-D tensors separately
};

struct TensorLabel {
  std::string skip_reason;   ///< non-empty: not selected (e.g. another --kind)
  std::string kind = "weight";
  std::string parameter;
  std::string op_type = "other";
  int64_t layer = -1, num_layers = 0;
  double rel_depth = -1.0;
  bool muon = false, transposed = false;
  std::vector<FusedPart> parts;  ///< with split_fused: the parts of a fused 2-D tensor (else empty)
};

struct SourceLabels {
  CheckpointContext context;
  int64_t model_params = 0;
  std::string params_source;         ///< "manifest" or "weights", ":non-embedding" appended when so
  std::vector<TensorLabel> tensors;  ///< parallel to the source's entries()
};

/// Labels every entry of every source. `notes` receives one line per distinct problem that
/// lowers trust (unrecovered names, ambiguous recipes, unreadable config.json, inferred layer
/// counts), each once per run with the number of checkpoints it concerns — never fatal.
std::vector<SourceLabels> label_sources(const std::vector<std::unique_ptr<TensorSource>>& sources,
                                        const LabelOptions& options, std::vector<std::string>& notes);

}  // namespace muspec
