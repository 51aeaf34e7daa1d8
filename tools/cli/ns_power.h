// `muspec ns eval|threshold|simulate --power P`: the spectral family U Σᵖ Vᵀ on the command line
// (docs/spectral-family.md). The option parsing lives with the p = 0 commands (cmd_ns.cpp,
// cmd_ns_eval.cpp); these run when --power is given.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ns/spectral_family.h"

namespace muspec::cli {

/// Which member and which iteration.
struct PowerArgs {
  std::string power, iteration, schedule;     ///< schedule: newton-schulz only (default keller)
  std::string regularization = "1e-6,1e-4";   ///< ABS,REL of the shift ABS + REL·tr(G)/n
  std::optional<int> steps;                   ///< default: the paper's 15
  ns::SpectralMap to_map() const;             ///< throws UsageError
};

struct PowerEvalArgs {
  PowerArgs map;
  std::string spectra, sigma, output, quantiles = "0.01,0.05,0.1,0.5";
  double tolerance = 1e-2;
  bool quiet = false;
};
int run_power_eval(const PowerEvalArgs& a);

struct PowerThresholdArgs {
  PowerArgs map;
  std::string spectra, sigma, output;
  double quantile = 0.05, tolerance = 1e-2;
  int max_steps = 200;
  bool json = false;
};
int run_power_threshold(const PowerThresholdArgs& a);

struct PowerSimulateArgs {
  PowerArgs map;
  std::string precision = "f64", output, include;
  std::vector<std::string> paths;
  int64_t max_elements = int64_t{1} << 22;
  bool quiet = false, json = false;
};
int run_power_simulate(const PowerSimulateArgs& a);

}  // namespace muspec::cli
