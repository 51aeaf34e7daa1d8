// Optimizer state dicts (optimizer.pt, ckpt.pt['optimizer']) -> per-parameter state tensors
// with recovered parameter names. ../shared/reference/checkpoint-formats.md §3.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/parameter_order.h"

namespace muspec {

class TorchFile;

/// One state tensor of one parameter ("momentum_buffer" of id 3).
struct OptimizerStateTensor {
  size_t entry = 0;            ///< index in TorchFile::entries()
  std::string param_key;       ///< the key in `state` as text: "3", or an FQN when FQN-keyed
  int64_t param_id = -1;       ///< integer id, -1 when FQN-keyed
  std::string state_key;       ///< "momentum_buffer", "exp_avg", "exp_avg_sq", "moment1", ...
  std::vector<int64_t> shape;
};

struct ParamGroupInfo {
  std::vector<std::string> params;       ///< ids as text, or FQNs
  std::vector<std::string> param_names;  ///< PyTorch >= 2.6 `param_names`, when present
  nlohmann::json hyper = nlohmann::json::object();  ///< lr, momentum, nesterov, ns_steps, ... (scalars only)
};

struct OptimizerLayout {
  std::string prefix;   ///< path of the state dict inside the file: "" or "optimizer/"
  std::vector<OptimizerStateTensor> tensors;
  std::vector<ParamGroupInfo> groups;
  bool fqn_keyed = false;
};

/// Finds an optimizer state dict (a dict with `state` and `param_groups`) at the root of the
/// file or under a common key ("optimizer", "optimizer_state_dict", "optim", "opt").
std::optional<OptimizerLayout> find_optimizer_layout(const TorchFile& file);

/// How ids were mapped to names, with what trust, and what is doubtful.
struct NameRecovery {
  std::map<std::string, std::string> names;  ///< param_key -> parameter name (complete, partial or empty)
  std::string source;                        ///< "param_names", "fqn", "explicit", "recipe:<name>"
  std::vector<std::string> problems;         ///< why some or all ids keep no name
  std::vector<std::string> warnings;         ///< e.g. equal shapes make the order unverifiable
  std::vector<std::string> tried;            ///< each recipe tried automatically: passed, or why not
  bool ok() const { return problems.empty(); }
};

/// Recipes: how a training script builds its param groups from `named_parameters()`. Each
/// gives the groups' parameter lists in id order ("hidden" = a >= 2-D parameter that is not an
/// embedding or the head; docs/runs.md):
///   plain          one group: every parameter
///   hf-trainer     transformers Trainer: [decay (not bias/norm), no-decay]
///   nanogpt        nanoGPT configure_optimizers: [dim >= 2, dim < 2]
///   muon           one group: hidden matrices (torch.optim.Muon, a separate AdamW elsewhere)
///   muon-sorted    KellerJordan Muon: one group, hidden matrices sorted by size (stable, descending)
///   muon-then-adam one optimizer: [hidden, the rest] in model order (single-device KJ style)
///   kj-aux         KellerJordan MuonWithAuxAdam as its README builds it: [hidden sorted by size,
///                  body gains/biases then head then embedding]
///   muon-first     one group: hidden, then the rest (Moonlight)
const std::vector<std::string>& name_recipes();

/// Recovers parameter names, in this order of trust: `param_names` in the groups; FQN keys;
/// `explicit_order` (a mapping file or a run manifest's param_order: name of id i at i, every
/// name a parameter of `model` when it is known); `recipe` applied to `model`; with no recipe
/// and a known model, every recipe is tried and one is used only when it alone (or every one
/// that passes, identically) fits every state shape and every group size. A recipe group whose
/// ids all check keeps its names when another group does not (reported in `problems`).
NameRecovery recover_parameter_names(const OptimizerLayout& layout, const std::vector<std::string>& explicit_order,
                                     const std::string& recipe, const std::vector<ModelParam>& model);

/// The kind of a state tensor, as `scan --kind` names it: "momentum" (momentum_buffer),
/// "exp_avg" (exp_avg, Moonlight's moment1), "exp_avg_sq" (exp_avg_sq, moment2); other keys
/// are returned unchanged.
std::string state_kind(const std::string& state_key);

}  // namespace muspec
