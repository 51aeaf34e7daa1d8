// Per-matrix Newton–Schulz recommendations (`muspec recommend`, docs/ns-config.md): for each
// matrix Muon orthogonalizes, the fewest NS steps (and their coefficients) that bring every
// normalized singular value s = σ/‖G‖_F in [ℓ, 1] into the band, where ℓ is the spectrum's
// quantile at the chosen level divided by the safety margin. The FLOPs are reported against the
// uniform default (Keller Jordan's quintic × 5) on the same shapes.
//
// Example:
//   SpectraFile f = read_spectra_h5("spectra.h5");
//   NsInputs in = select_ns_inputs(f, "spectra.h5", {});
//   NsConfig cfg = recommend_measured(in, RecommendOptions{});   // keller, q = 0.05, margin 1
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ns/schedule.h"
#include "configs/ns_config.h"
#include "ns/simulate.h"
#include "spectra/summary.h"
#include "store/spectra_store.h"

namespace muspec {

/// Which records of a spectra file stand for the NS input of each parameter.
struct NsInputSelection {
  std::string run;               ///< "" = the file's only run (UsageError when there are several)
  std::optional<int64_t> step;   ///< nullopt = the latest step of each parameter
  /// "auto": the momentum buffer ("momentum", else "exp_avg") when the file has one for the
  /// parameter (Muon orthogonalizes the momentum), else the weight. Otherwise an exact kind.
  std::string kind = "auto";
  bool latest_only = false;      ///< without `step`: use only the latest step, not the settled history
};

/// One analysed matrix of a parameter (a 3-D tensor's slice, or a fused tensor's part).
struct MatrixPart {
  std::string record;            ///< the record's display name
  std::string file, tensor;      ///< where the matrix is stored (for --verify)
  int64_t slice = -1;
  int64_t rows = 0, cols = 0;
  std::vector<double> sigma;     ///< ascending; may be empty when only quantiles were stored
  double frobenius = 0.0;        ///< ‖G‖_F
  std::vector<QuantileValue> quantiles;
};

/// Everything recommend and plan need about one Muon parameter.
struct NsMatrix {
  std::string parameter, op_type, kind, run;
  int64_t layer = -1, num_layers = 0, step = -1;
  double rel_depth = -1.0;
  bool transposed = false;        ///< stored (in, out) (GPT-2 Conv1D); parts are (out, in)
  std::vector<MatrixPart> parts;  ///< never empty
  /// The same parameter at the other steps of the run (same kind, ascending steps), when no
  /// single step was asked for: the lower bound comes from the settled checkpoints.
  std::vector<std::pair<int64_t, std::vector<MatrixPart>>> earlier;
};

struct NsInputs {
  std::vector<NsMatrix> matrices;     ///< sorted by (layer, op_type, parameter)
  std::vector<std::string> skipped;   ///< "<record>: why" for records that could not be used
  std::string selection_note;         ///< one line: which run, steps and kinds were used
};

/// Picks, per Muon parameter (records with muon = true and a finite spectrum, transform "none"),
/// the records of the chosen run, kind and step. Throws UsageError when the file holds several
/// runs and none was chosen, or nothing matches.
NsInputs select_ns_inputs(const SpectraFile& file, const std::string& origin, const NsInputSelection& sel);

/// Normalized singular value σ/‖G‖_F at quantile level q: the stored quantile at that level, else
/// computed from sigma (numpy 'linear' rule). nullopt when neither is available.
std::optional<double> rel_frob_quantile(const MatrixPart& part, double q);

/// Turns a lower bound ℓ into the fewest-steps setting of a schedule family.
class ScheduleRule {
 public:
  /// `family`: "designed" (Polar Express greedy minimax design for ℓ, degree 5, per layer), a
  /// catalog name or a schedule file. `band`: nullopt = the family's default band.
  /// Throws UsageError for an unknown family or max_steps outside [1, 99].
  ScheduleRule(const std::string& family, std::optional<ns::Band> band, int max_steps);

  struct Choice {
    NsSetting setting;
    bool met = false;       ///< [ℓ, 1] lands in the band; else setting has max_steps steps
    ns::Interval image;     ///< exact output range of [ℓ, 1]
  };
  /// The setting with exactly `steps` steps for lower bound ℓ (met: [ℓ, 1] lands in the band).
  Choice choose_steps(double lower, int steps) const;

  /// The fewest steps k ≤ max_steps with every s ∈ [ℓ, 1] in the band. ℓ ≤ 0 (a zero singular
  /// value at the quantile) cannot be met. Callers check ℓ with lower_bound_problem first: a NaN,
  /// infinite or > 1 ℓ throws UsageError naming the problem, never a setting.
  Choice choose(double lower) const;

  const ns::Band& band() const { return band_; }
  const std::string& family() const { return family_; }
  bool designed() const { return designed_; }
  int max_steps() const { return max_steps_; }
  /// The fixed schedule (not meaningful when designed()).
  const ns::Schedule& schedule() const { return schedule_; }

 private:
  std::string family_;
  bool designed_ = false;
  ns::Schedule schedule_;
  ns::Band band_;
  int max_steps_;
};

struct RecommendOptions {
  double quantile = 0.05;           ///< level in [0, 1] of the normalized singular values to protect
  double margin = 1.0;              ///< ℓ = quantile value / margin (> 0; ≥ 1 is the safe side)
  std::string family = "keller";
  std::optional<ns::Band> band;
  int max_steps = 15;
  ns::Precision precision = ns::Precision::BF16;  ///< the arithmetic the trainer runs NS in
  bool verify = false;              ///< run NS at `precision` on every measured matrix, add steps until it passes
  std::string burn_in = "auto";     ///< which checkpoints count as settled (fit's --burn-in rule)
  double fragile_ratio = 1.1;       ///< ℓ within this factor above the chosen steps' threshold: fragile
};

/// Throws UsageError unless 0 ≤ quantile ≤ 1 and margin > 0 (finite).
void check_recommend_options(const RecommendOptions& o);

/// The requirement ℓ of one parameter: the smallest quantile value over its parts, / margin.
/// nullopt when no part has the quantile.
std::optional<double> parameter_lower_bound(const NsMatrix& m, const RecommendOptions& o);

/// The lower bound over the run's checkpoints (the settled ones by fit's burn-in rule, else the
/// last half; without earlier checkpoints the latest). `stab` gets the checkpoints used (steps,
/// their ℓ) and where the bound came from. nullopt when the latest step has no quantile.
std::optional<double> settled_lower_bound(const NsMatrix& m, const RecommendOptions& o, NsStability& stab);

/// ℓ may exceed 1 by this much (rounding of σ/‖G‖_F, see docs/spectra-h5.md); it is then used as 1.
inline constexpr double kLowerBoundTolerance = 1e-6;

/// Empty when ℓ can be planned for; else why not: NaN, infinite, or above 1 (+ tolerance), which
/// only a damaged spectrum or a margin below 1 produces.
std::string lower_bound_problem(double lower);

/// The display name of the record behind a parameter's lower bound (quoted), for messages.
std::string lower_bound_record(const NsMatrix& m, const RecommendOptions& o);

/// Measured mode: one config entry per parameter. Parameters whose quantile is unavailable or
/// whose ℓ fails lower_bound_problem are appended to `skipped` (with the record and the reason).
/// Provenance fields other than mode/quantile/family/band/margin are left
/// for the caller.
NsConfig recommend_measured(const NsInputs& inputs, const RecommendOptions& o,
                            std::vector<std::string>* skipped = nullptr);

}  // namespace muspec
