// The NS configuration file that `muspec recommend` and `muspec plan` write and that trainers
// read (schema "muspec.ns_config", version 1; documented in docs/ns-config.md).
//
// Every entry carries its coefficients fully expanded (exactly `steps` triples (a, b, c); a
// cubic step has c = 0), so a reader needs no past-the-end rule. Lookup rule for trainers:
// the exact parameter name, else the first pattern whose regex full-matches and whose captured
// layer index lies in `layers`, else `default`.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ns/polynomial.h"
#include "ns/schedule.h"
#include "ns/spectral_family.h"

namespace muspec {

inline constexpr const char* kNsConfigFormat = "muspec.ns_config";
inline constexpr int kNsConfigVersion = 1;
/// Version 2: a member U Σᵖ Vᵀ of the spectral family other than p = 0 (`recommend --power`):
/// a top-level "spectral_map" and per-entry iteration steps instead of NS coefficients.
inline constexpr int kNsConfigFamilyVersion = 2;

/// What one matrix's NS call does: `steps` odd polynomials applied after the normalization
/// X₀ = G / (‖G‖_F(1+δ) + ε).
struct NsSetting {
  int steps = 0;
  std::vector<ns::OddPoly> coefficients;  ///< exactly `steps` entries, applied in order
  ns::Normalization normalization;
};

/// The uniform default: Keller Jordan's quintic × 5, X / (‖X‖_F + 1e-7).
NsSetting default_ns_setting();

/// The setting that `steps` steps of `schedule` apply (past-end rule expanded).
NsSetting setting_from_schedule(const ns::Schedule& schedule, int steps);

/// A schedule whose first `steps` polynomials are the setting's (for ns::covers & co).
ns::Schedule schedule_from_setting(const NsSetting& setting);

/// Flops of one NS call with this setting on an m×n matrix (normalization + steps; ns/cost.h).
double setting_flops(const NsSetting& setting, int64_t rows, int64_t cols);

/// Where the document came from.
struct NsConfigProvenance {
  std::string mode;                  ///< "measured", "predicted" or "plan"
  std::vector<std::string> inputs;   ///< files read
  double quantile = 0.05;            ///< level of the normalized singular value that must land in the band
  std::string family;                ///< schedule family (catalog name, "designed", or a file)
  ns::Band band{0.7, 1.3};
  double margin = 1.0;               ///< lower bound = quantile value / margin
  std::optional<double> target_params;  ///< predicted mode: model size M
  std::optional<double> level;          ///< predicted mode: prediction-interval level
  std::string precision = "f64";        ///< arithmetic the promise is made for: f64, f32, bf16
  std::optional<ns::Band> precision_band;  ///< the band promised at that precision (band widened, precision_check.h); unset: band
  bool verified = false;                ///< --verify ran the matrix-level NS on every measured matrix
  std::string command;               ///< the command line
};

/// Fields shared by a named parameter and a name pattern.
struct NsConfigEntry {
  NsSetting setting;
  std::string op_type = "other";
  std::string group;
  double lower_bound = 0.0;          ///< ℓ: every normalized s ∈ [ℓ, 1] must land in the band
  std::string bound_kind;            ///< "measured" or "predicted_lower"
  bool requirement_met = true;       ///< false: no schedule within --max-steps covers [ℓ, 1]
  ns::Interval image;                ///< exact output range of [ℓ, 1] under the setting
  std::optional<double> flops;       ///< per matrix; unknown without a shape
  std::optional<double> default_flops;
};

/// What --verify measured for one parameter at the config's precision.
struct NsVerification {
  double min_gain = 0.0, max_gain = 0.0;  ///< gains of the directions at or above the lower bound
  double margin = 0.0;                    ///< distance of the gains to the nearer edge of the precision band
  int added_steps = 0;                    ///< steps added to the scalar-map choice until every matrix passed
  bool passed = false;
  int64_t matrices = 0;                   ///< matrices run (parts whose file could not be read are left out)
  int realizations = 1;                   ///< rounding realizations each matrix was run in (bf16: both
                                          ///< kernels, and jittered ones under the floor)
};

/// How much a recommendation depends on the checkpoint it was measured at.
struct NsStability {
  std::string lower_bound_from;          ///< "latest", "settled" (min over settled checkpoints) or "last-half" (never settled)
  std::vector<int64_t> steps, needed;    ///< each checkpoint's step and the NS steps it alone would need
  std::vector<double> lower_bounds;      ///< each checkpoint's ℓ
  std::optional<double> threshold;       ///< smallest ℓ the chosen steps still cover (fixed schedules)
  std::optional<double> threshold_ratio; ///< ℓ / threshold (≥ 1)
  bool fragile = false;                  ///< threshold_ratio under --fragile-ratio, or checkpoints disagree
};

/// What --power measured for one parameter (version 2 only).
struct NsFamilyResult {
  double max_rel_error = 0.0;     ///< worst |out/σᵖ − 1| over values at or above the quantile (scalar map)
  double matrix_rel_error = 0.0;  ///< worst min_c ‖c·out − σᵖ‖/‖σᵖ‖ over its matrices (scalar map)
  std::optional<double> verified_max_rel_error;  ///< --verify: the same, per direction, at the config's precision
};

struct NsConfigParameter : NsConfigEntry {
  std::string name;
  std::vector<int64_t> shape;        ///< [m, n] as analysed
  int64_t layer = -1;
  int64_t matrices = 1;              ///< slices/parts of the tensor counted in flops
  std::optional<NsVerification> verified;
  std::optional<NsStability> stability;
  std::optional<NsFamilyResult> family;  ///< set in version 2 documents
  std::string storage;               ///< "conv1d": the trainer's tensor is stored (in, out), the
                                     ///< transpose of `shape`; "" = stored as `shape` (nn.Linear)
};

struct NsConfigPattern : NsConfigEntry {
  std::string regex;                 ///< full match; capture group 1 = layer index
  int first_layer = 0, last_layer = 0;
  std::vector<int64_t> shape;        ///< when known (from a model config)
  double predicted = 0.0;            ///< point prediction of the quantile (before the margin)
  bool extrapolated = false;         ///< target size outside the fitted range
};

/// The family member a version 2 document configures. Per entry, `setting.steps` is the
/// iteration count per root call (0 for p = 1); the coefficients are unused.
struct NsSpectralMapConfig {
  ns::SpectralMap map;            ///< power, iteration, regularization (its `steps`: the default)
  double tolerance = 1e-2;        ///< every σ at or above the quantile within this relative error
  std::string input = "momentum"; ///< what the trainer feeds the map: "momentum" or "rms_normalized"
};

struct NsConfig {
  NsConfigProvenance provenance;
  std::optional<NsSpectralMapConfig> spectral_map;  ///< set: version 2 (the spectral family)
  NsSetting default_setting = default_ns_setting();
  std::vector<NsConfigParameter> parameters;
  std::vector<NsConfigPattern> patterns;
  nlohmann::json extra = nlohmann::json::object();  ///< merged at top level (e.g. "plan")
  std::vector<std::string> notes;  ///< for the user, not written: precision floors, unverifiable parts
};

/// FLOP totals over parameters (and patterns × their layer count). Unknown when some entry
/// has no flops.
struct NsConfigTotals {
  std::optional<double> flops, default_flops;
  int64_t parameters = 0;
};
NsConfigTotals ns_config_totals(const NsConfig& config);

/// "muspec <version>" and the current time as ISO-8601 UTC ("2026-06-07T12:00:00Z").
std::string iso_utc_now();

/// The versioned JSON document. Numbers round-trip exactly.
nlohmann::json ns_config_to_json(const NsConfig& config);

/// Checks a parsed document against the schema; returns "" when valid, else the first problem
/// ("parameters.model.layers.0.q_proj.weight: 3 coefficient triples for 4 steps").
std::string ns_config_problem(const nlohmann::json& j);

/// Writes a JSON document atomically (pretty-printed, trailing newline).
void write_json_atomically(const std::string& path, const nlohmann::json& j);

/// The provenance block as JSON (shared with the torch-groups format).
nlohmann::json provenance_to_json(const NsConfigProvenance& p);

/// Triples as JSON: [[a, b, c], ...].
nlohmann::json coefficients_to_json(const std::vector<ns::OddPoly>& polys);

}  // namespace muspec
