// Optimizer state dicts (optimizer.pt, ckpt.pt['optimizer']) -> per-parameter state tensors
// with recovered parameter names. ../shared/reference/checkpoint-formats.md §3.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

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

/// A model parameter in `named_parameters()` order.
struct ModelParam {
  std::string name;
  std::vector<int64_t> shape;
};

/// How ids were mapped to names, with what trust, and what is doubtful.
struct NameRecovery {
  std::map<std::string, std::string> names;  ///< param_key -> parameter name
  std::string source;                        ///< "param_names", "fqn", "explicit", "recipe:<name>"
  std::vector<std::string> problems;         ///< shape/count mismatches: the mapping is not used
  std::vector<std::string> warnings;         ///< e.g. equal shapes make the order unverifiable
  bool ok() const { return problems.empty(); }
};

/// Recipes that rebuild the id order from the model's parameters (docs/optimizer-state.md):
///   plain          ids follow named_parameters() order
///   hf-trainer     decay parameters first (not bias/norm), then the rest
///   nanogpt        dim >= 2 first, then dim < 2
///   muon-sorted    KellerJordan Muon: hidden 2-D matrices sorted by size (descending, stable),
///                  then the other parameters in order
///   muon-then-adam hidden 2-D matrices in order, then the other parameters in order
const std::vector<std::string>& name_recipes();

/// Recovers parameter names, in this order of trust: `param_names` in the groups; FQN keys;
/// `explicit_order` (a mapping file or a run manifest's param_order: name of id i at i);
/// `recipe` applied to `model`. Every mapping is checked against the state tensors' shapes.
NameRecovery recover_parameter_names(const OptimizerLayout& layout, const std::vector<std::string>& explicit_order,
                                     const std::string& recipe, const std::vector<ModelParam>& model);

/// The kind of a state tensor, as `scan --kind` names it: "momentum" (momentum_buffer),
/// "exp_avg" (exp_avg, Moonlight's moment1), "exp_avg_sq" (exp_avg_sq, moment2); other keys
/// are returned unchanged.
std::string state_kind(const std::string& state_key);

}  // namespace muspec
