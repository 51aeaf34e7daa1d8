// Predicted mode of `muspec recommend` (docs/ns-config.md): NS settings for a target model size
// from fitted spectral scaling laws (analysis/laws/laws.h). For every Muon operator type of the
// target's naming family and every block, the matching law groups' per-matrix LOWER prediction
// bound of the chosen quantile (σ/‖G‖_F scale; it includes the law's member_sd, the scatter of
// one matrix around its group's mean) divided by the margin is the requirement ℓ; the fewest
// steps of the family covering [ℓ, 1] are chosen as in measured mode. Consecutive blocks with
// the same group and bound become one name pattern (regex + layer range).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "model/model_config.h"
#include "configs/ns_config.h"
#include "configs/recommend.h"

namespace muspec {

struct LawsTarget {
  double params = 0.0;           ///< target model size M (> 0)
  double level = 0.95;           ///< prediction-interval level in (0, 1)
  std::optional<int> layers;     ///< number of blocks; else from the model config
  std::string model_config;      ///< optional config.json: layers, matrix shapes, naming family
  std::string naming;            ///< naming family of the patterns; "" = model config's, else llama
};

/// Full-match regex (capture group 1 = block index) for the weight of `op_type` in the naming
/// table family `family`, derived from its table row (lib/model/architectures.cpp). nullopt
/// when the family has no such in-block row.
std::optional<std::string> weight_name_regex(const std::string& family, const std::string& op_type);

/// Muon operator types (in display order) that the family names inside its blocks.
std::vector<std::string> family_muon_ops(const std::string& family);

/// Concrete parameter name of block `layer` for a regex made by weight_name_regex, when the
/// regex is a literal apart from its optional prefix group and the layer capture:
/// prefix + "layers.<layer>.self_attn.q_proj.weight". nullopt otherwise.
std::optional<std::string> concrete_name(const std::string& regex, int layer, const std::string& prefix);

/// Matrix shape (rows, cols) of a Muon operator type in a model, when the config states the
/// sizes (q: heads·head_dim × H, k/v: kv_heads·head_dim × H, o: H × heads·head_dim, gate/up:
/// I × H, down: H × I, fused qkv and gate_up stacked); empty otherwise.
std::vector<int64_t> op_shape(const ModelConfig& config, const std::string& op_type);

/// "0-3, 7, 9-10" for sorted block indices.
std::string ranges_text(const std::vector<int>& blocks);

/// Predicted mode. Throws UsageError when the laws have no law at the quantile on the rel_frob
/// scale, the number of blocks is unknown or outside [1, 100000], or params is outside
/// [1e3, 1e15]; InputError (file and laws[i]) when a law's prediction is not credible
/// (analysis::predict_laws). Operator/block pairs no law covers are listed in `uncovered` (the
/// default setting applies to them); the laws reader's notes go to `notes`.
NsConfig recommend_predicted(const std::string& laws_path, const LawsTarget& target, const RecommendOptions& o,
                             std::vector<std::string>* uncovered = nullptr, std::vector<std::string>* notes = nullptr);

}  // namespace muspec
