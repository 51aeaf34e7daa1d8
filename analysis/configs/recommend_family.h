// `muspec recommend --power P` (docs/spectral-family.md "Per-layer iteration counts"): for each
// parameter, the fewest iterations per root call of the chosen member U Σᵖ Vᵀ of the spectral
// family so that every singular value at or above the quantile comes out within the tolerance of
// σᵖ, on every matrix of the parameter at the latest and the settled checkpoints. Written as an
// ns_config version 2 document; p = 0 stays with `recommend` (version 1, NS coefficients).
//
// The maps depend on the whole spectrum (the shift uses tr(G), the normalization ‖A‖_F), so the
// scan must have stored every singular value (not `--values quantiles`).
#pragma once

#include <string>
#include <vector>

#include "ns/simulate.h"
#include "ns/spectral_family.h"
#include "configs/ns_config.h"
#include "configs/recommend.h"

namespace muspec {

struct FamilyOptions {
  ns::SpectralMap map;                     ///< member, iteration, regularization; `steps` = the default entry
  double tolerance = 1e-2;                 ///< |out/σᵖ − 1| allowed at and above the quantile
  std::string input = "momentum";          ///< what the trainer feeds the map (recorded for the adapter)
  ns::Precision precision = ns::Precision::F32;  ///< --verify's arithmetic (the paper runs float32)
};

/// One config entry per parameter; parameters without full spectra (or without the quantile) are
/// appended to `skipped` with the reason. Uses o.quantile, o.max_steps, o.burn_in, o.verify.
NsConfig recommend_family(const NsInputs& inputs, const RecommendOptions& o, const FamilyOptions& f,
                          std::vector<std::string>* skipped = nullptr);

/// Worst |out/σᵖ − 1| over the values at or above the q-quantile of `sigma` (any order), by the
/// scalar map of `m`.
double family_error_above_quantile(const ns::SpectralMap& m, const std::vector<double>& sigma, double quantile,
                                   double tolerance);

}  // namespace muspec
