// `--format torch-groups`: an NS configuration as parameter groups for torch.optim.Muon, whose
// groups take ONE coefficient triple `ns_coefficients` = (a, b, c) reused at every step,
// `ns_steps` (< 100) and `eps` (the normalization is X / max(‖X‖_F, eps): no δ). Schema
// "muspec.torch_groups", version 1 (docs/ns-config.md).
//
// A per-step schedule (or one with δ ≠ 0) cannot be expressed exactly. It is replaced by the
// fewest repeats of one fixed triple that meet the same requirement (every s ∈ [ℓ, 1] lands in
// the band, evaluated with δ = 0), choosing the cheapest among Keller Jordan's triple, the
// schedule's own triples and every catalog triple; the group says so in `approximation`.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "ns/polynomial.h"
#include "configs/ns_config.h"

namespace muspec {

inline constexpr const char* kTorchGroupsFormat = "muspec.torch_groups";

struct TorchGroup {
  std::vector<std::string> params;    ///< exact parameter names (measured / plan mode)
  std::vector<nlohmann::json> patterns;  ///< {"regex", "layers"} (predicted mode)
  ns::OddPoly coefficients;           ///< the one triple
  int steps = 5;
  double eps = 1e-7;
  bool exact = true;                  ///< the group's settings are reproduced exactly
  bool requirement_met = true;        ///< every member's requirement holds with this triple
  std::string approximation;          ///< empty when exact
};

/// One torch setting per config entry, merged into groups of equal (triple, steps, eps, exact).
/// Name patterns (predicted mode) are expanded into concrete names for their layer range,
/// `name_prefix` + the literal name (recommend_laws.h concrete_name), since torch groups hold
/// parameters, not patterns. `notes` receives one line per approximated entry (for stderr).
std::vector<TorchGroup> torch_groups(const NsConfig& config, int max_steps, const std::string& name_prefix,
                                     std::vector<std::string>* notes);

/// The usual prefix of a naming family's parameter names in model.named_parameters():
/// "model." (llama), "gpt_neox." (gpt_neox), "transformer." (gpt2), else "".
std::string default_name_prefix(const std::string& family);

/// The document {"format": "muspec.torch_groups", "version": 1, provenance..., "groups": [...]}.
nlohmann::json torch_groups_to_json(const NsConfig& config, const std::vector<TorchGroup>& groups);

/// The file formats `recommend` and `plan` write.
enum class ConfigFormat { Muspec, TorchGroups };
ConfigFormat parse_config_format(const std::string& s);  ///< "muspec" | "torch-groups"; UsageError otherwise

/// Writes `config` to `path` atomically as ns_config.json or as torch groups. For torch groups,
/// names use `name_prefix` (empty: the config's naming family's usual prefix) and `notes`
/// receives one line per approximated entry.
void write_config(const NsConfig& config, ConfigFormat format, int max_steps, const std::string& name_prefix,
                  const std::string& path, std::vector<std::string>* notes);

}  // namespace muspec
