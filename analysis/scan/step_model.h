// The model of one checkpoint step, seen through its weight files: which tensors are model
// parameters (not RNG state, scheduler state, buffers or tied duplicates), their
// `named_parameters()` order, the parameter count and the deepest block. Optimizer-state
// naming, --kind auto, the model size and the layer count all start from here.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "io/tensor_source.h"
#include "model/optimizer_state.h"
#include "model/parameter_order.h"

namespace muspec {

/// What a source holds, for labelling.
struct SourceRole {
  std::optional<OptimizerLayout> optimizer;  ///< an optimizer state dict inside the file
  std::string weight_prefix;                 ///< path of the model state dict in the file ("model/"), or ""
  std::string not_weights;                   ///< non-empty: the file holds no model weights (why)
  bool object_paths = false;                 ///< names are paths in a pickled object ('/'-joined), not tensor names
  int64_t step = -1;                         ///< a step counter in the file (nanoGPT iter_num, global_step, step)
  std::shared_ptr<const struct ModelConfig> config;  ///< a config inside the file (nanoGPT model_args)
};

/// Reads what kind of file `source` is (optimizer state, trainer state, model weights).
SourceRole source_role(const TensorSource& source);

/// The name of entry `name` as a model parameter, or "" when it is not one (optimizer state,
/// another object in the file).
std::string weight_parameter_name(const std::string& name, const SourceRole& role);

struct StepModel {
  std::vector<ModelParam> params;    ///< in named_parameters() order when order_source is set
  std::string order_source;          ///< "file" (a torch state_dict keeps registration order), "architecture", ""
  std::string order_problem;         ///< why the order is unknown
  int64_t total = 0;                 ///< trainable parameters (tied storage once, no buffers)
  int64_t non_embedding = 0;         ///< the same without embeddings and the output head
  int max_block = -1;                ///< highest block index among the weights (-1: none)
  std::set<std::string> state_kinds; ///< optimizer state kinds present: momentum, exp_avg, ...
  std::set<std::string> counted;     ///< canonical names of `params`: a parameter saved in two files counts once
  bool pickle_order = true;          ///< every weight came from a torch file (state_dict order)
};

/// Adds one source of the step: its weights and the state kinds it holds.
void add_to_step(StepModel& step, const TensorSource& source, const SourceRole& role);

/// Settles the parameter order once every source of the step was added.
void finish_step(StepModel& step);

/// The kind `--kind auto` selects for a step: momentum when there is momentum state, else Adam's
/// first moment, else weights.
std::string auto_kind(const StepModel& step);

}  // namespace muspec
