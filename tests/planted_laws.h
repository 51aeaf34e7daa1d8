// Planted power laws for the scaling-law tests: runs of several model sizes whose settled
// log-quantiles follow log q = log a + beta log M exactly, plus a random per-layer offset
// (layer_sd) and independent step-to-step noise (step_sd). Bigger models have more layers, so
// a depth group holds more matrices. Header-only; used by the fit, laws and CLI tests.
#pragma once

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "laws/burn_in.h"
#include "laws/power_law.h"
#include "spectra/record.h"
#include "spectra/summary.h"

namespace muspec_test {

struct PlantedLaw {
  double beta = -0.25;
  double log_a = 1.0;
  std::vector<double> sizes = {1e8, 3e8, 1e9, 3e9, 1e10};
  std::vector<int> matrices = {2, 3, 4, 6, 8};  ///< group members per run (same order as sizes)
  double layer_sd = 0.05;                         ///< per-matrix offset (natural log)
  double step_sd = 0.03;                          ///< per-step noise (natural log)
  int settled_steps = 10;

  double log_value(double m) const { return log_a + beta * std::log(m); }
};

/// One RunSample per size, as the fit sees them after burn-in.
inline std::vector<muspec::analysis::RunSample> planted_runs(const PlantedLaw& law, std::mt19937_64& rng) {
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<muspec::analysis::RunSample> runs;
  for (size_t i = 0; i < law.sizes.size(); ++i) {
    muspec::analysis::RunSample run;
    run.run = "run" + std::to_string(i);
    run.model_params = law.sizes[i];
    for (int m = 0; m < law.matrices[i]; ++m) {
      const double offset = law.layer_sd * normal(rng);
      muspec::analysis::MatrixSample s;
      s.parameter = "layers." + std::to_string(m) + ".q";
      for (int k = 0; k < law.settled_steps; ++k)
        s.settled_log_values.push_back(law.log_value(law.sizes[i]) + offset + law.step_sd * normal(rng));
      s.log_median = muspec::analysis::median_of(s.settled_log_values);
      s.log_scale = muspec::analysis::robust_scale(s.settled_log_values);
      run.matrices.push_back(std::move(s));
    }
    runs.push_back(std::move(run));
  }
  return runs;
}

/// A record whose singular values are `scale` times 1..n (so every sigma quantile is
/// proportional to `scale`), labelled as a Muon momentum buffer of block `layer`.
inline muspec::SpectrumRecord planted_record(const std::string& run, int64_t params, int64_t step, const std::string& op,
                                             int64_t layer, int64_t num_layers, double scale) {
  muspec::SpectrumRecord r;
  r.run = run;
  r.step = step;
  r.model_params = params;
  r.kind = "momentum";
  r.op_type = op;
  r.layer = layer;
  r.num_layers = num_layers;
  r.rel_depth = num_layers > 1 ? static_cast<double>(layer) / static_cast<double>(num_layers - 1) : 0.0;
  r.muon = true;
  r.parameter = "model.layers." + std::to_string(layer) + "." + op + ".weight";
  r.name = r.tensor = r.parameter;
  r.file = run + "/checkpoint-" + std::to_string(step) + "/optimizer.pt";
  r.rows = r.cols = 8;
  r.tensor_shape = {8, 8};
  r.dtype = "F32";
  r.transform = "none";
  r.method = "svd";
  r.device = "cpu";
  double frob2 = 0;
  for (int k = 1; k <= 8; ++k) r.sigma.push_back(scale * k), frob2 += scale * k * scale * k;
  r.summary = muspec::summarize_spectrum(r.sigma, std::sqrt(frob2), 0.0, {0.05, 0.5});
  return r;
}

}  // namespace muspec_test
