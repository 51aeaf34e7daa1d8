// muspec ns eval|threshold|simulate --power P (docs/spectral-family.md): what the coupled Newton
// (or Guo–Higham, or NS for p = 0) iteration does to measured spectra, the fewest steps for a
// tolerance above a quantile, and the matrix-level check against an SVD.
#include "cli/ns_power.h"

#include <iostream>
#include <sstream>

#include "cli/app.h"
#include "cli/commands.h"
#include "cli/ns_common.h"
#include "core/error.h"
#include "ns/catalog.h"
#include "ns/spectral_simulate.h"
#include "spectra/backend.h"
#include "spectra/summary.h"

namespace muspec::cli {

namespace {

using namespace muspec::ns;
using nlohmann::json;

std::vector<double> parse_list(const std::string& text, const char* what) {
  std::vector<double> out;
  std::stringstream ss(text);
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    try {
      size_t used = 0;
      out.push_back(std::stod(tok, &used));
      if (used != tok.size()) throw std::invalid_argument(tok);
    } catch (const std::logic_error&) {
      throw UsageError(std::string(what) + ": '" + tok + "' is not a number");
    }
  }
  if (out.empty()) throw UsageError(std::string(what) + ": empty list");
  return out;
}

void check_level(double q, const char* what) {
  if (!(q >= 0.0 && q <= 1.0)) throw UsageError(std::string(what) + " must be in [0, 1]");
}

void check_tolerance(double t) {
  if (!(t > 0.0 && t < 1.0)) throw UsageError("--tolerance must be in (0, 1)");
}

json map_header(const SpectralMap& m) {
  json h = {{"power", m.power.text()}, {"power_value", m.power.value()}, {"iteration", iteration_name(m.iteration)},
            {"steps", m.steps},
            {"regularization", {{"absolute", m.regularization.absolute}, {"relative", m.regularization.relative}}}};
  if (m.iteration == IterationKind::NewtonSchulz) h["schedule"] = m.schedule.name;
  if (m.is_identity()) h["iteration"] = "identity";
  return h;
}

// The matrix shape when known, else a square one with the spectrum's length (costs only).
std::pair<int64_t, int64_t> shape_for_cost(const NsSpectrum& sp) {
  if (sp.rows > 0) return {sp.rows, sp.cols};
  const auto n = static_cast<int64_t>(sp.sigma.size());
  return {n, n};
}

// A scan stores min(rows, cols) values; the maps need all of them (trace, ‖A‖_F).
void require_full_spectrum(const NsSpectrum& sp) {
  if (sp.rows > 0 && static_cast<int64_t>(sp.sigma.size()) != std::min(sp.rows, sp.cols))
    throw UsageError("has " + std::to_string(sp.sigma.size()) + " singular values, the full spectrum of a " +
                     shape_text(sp.rows, sp.cols) + " matrix has " + std::to_string(std::min(sp.rows, sp.cols)));
}

int finish(const std::vector<std::string>& skipped) {
  for (const auto& m : skipped) std::cerr << "muspec: skipped " << m << "\n";
  return skipped.empty() ? kExitOk : kExitSkipped;
}

}  // namespace

SpectralMap PowerArgs::to_map() const {
  const SpectralPower p = parse_power(power);
  std::optional<IterationKind> it;
  if (!iteration.empty()) it = parse_iteration(iteration);
  if (!schedule.empty() && it.value_or(default_iteration(p)) != IterationKind::NewtonSchulz)
    throw UsageError("--schedule applies to --iteration newton-schulz (p = 0) only");
  const Schedule s = resolve_schedule(schedule.empty() ? "keller" : schedule);
  const std::vector<double> reg = parse_list(regularization, "--regularization");
  if (reg.size() != 2) throw UsageError("--regularization: expected ABS,REL");
  SpectralMap m;
  m.power = p;
  m.iteration = it.value_or(default_iteration(p));
  m.steps = steps.value_or(kPaperSteps);
  m.schedule = s;
  m.regularization = Regularization{reg[0], reg[1]};
  m.validate();
  return m;
}

int run_power_eval(const PowerEvalArgs& a) {
  const SpectralMap m = a.map.to_map();
  check_tolerance(a.tolerance);
  const std::vector<double> levels = parse_list(a.quantiles, "--quantiles");
  for (double q : levels) check_level(q, "--quantiles");
  std::vector<std::string> skipped;
  const std::vector<NsSpectrum> spectra = load_spectra(a.spectra, a.sigma, skipped, "ns eval");

  NsTable table;
  table.columns = {"name", "shape", "count", "a_min", "scale"};
  for (double q : levels) table.columns.push_back("rel_error_q" + format_g(q, 6));
  for (const char* c : {"max_rel_error", "not_converged", "not_converged_fraction", "matrix_rel_error", "matmuls", "flops"})
    table.columns.push_back(c);
  for (const NsSpectrum& sp : spectra) {
    try {
      require_full_spectrum(sp);
      const FamilyEvaluation e = evaluate_family(m, sp.sigma, a.tolerance);
      const auto [rows, cols] = shape_for_cost(sp);
      const FamilyCost c = family_cost(m, rows, cols);
      std::vector<json> row = {sp.name, shape_text(sp.rows, sp.cols), static_cast<int64_t>(e.sigma.size()),
                               std::isnan(e.smallest_normalized) ? json(nullptr) : json(e.smallest_normalized), e.scale};
      for (double q : levels) row.push_back(e.error_at_quantile(q));
      for (json v : {json(e.max_rel_error), json(e.not_converged), json(e.not_converged_fraction),
                     json(e.matrix_rel_error), json(c.matmuls), json(c.flops)})
        row.push_back(v);
      table.rows.push_back(std::move(row));
    } catch (const UsageError& e) {
      skipped.push_back(sp.name + ": " + e.what());
    }
  }
  if (table.rows.empty()) throw Error("ns eval: no spectrum could be evaluated; no output written");
  json header = map_header(m);
  header["tolerance"] = a.tolerance;
  if (m.iteration == IterationKind::CoupledNewton) header["newton_threshold"] = newton_threshold(m.steps, a.tolerance);
  if (!a.output.empty()) table.write(a.output, header);
  if (!a.quiet) {
    std::cout << m.describe() << ": output singular values against sigma^p; rel_error = |out/sigma^p - 1|, "
              << "not converged: rel_error > " << format_g(a.tolerance, 6) << "\n";
    table.print(std::cout);
  }
  return finish(skipped);
}

int run_power_threshold(const PowerThresholdArgs& a) {
  SpectralMap m = a.map.to_map();
  check_tolerance(a.tolerance);
  check_level(a.quantile, "--quantile");
  if (a.max_steps < 1) throw UsageError("--max-steps must be >= 1");
  std::vector<std::string> skipped;
  const std::vector<NsSpectrum> spectra = load_spectra(a.spectra, a.sigma, skipped, "ns threshold");
  NsTable table;
  table.columns = {"name", "shape", "count", "sigma_q", "min_steps", "matmuls", "flops"};
  for (const NsSpectrum& sp : spectra) {
    try {
      require_full_spectrum(sp);
      const auto k = min_family_steps(m, sp.sigma, a.quantile, a.tolerance, a.max_steps);
      std::vector<double> sorted = sp.sigma;
      std::sort(sorted.begin(), sorted.end());
      const auto [rows, cols] = shape_for_cost(sp);
      json matmuls = nullptr, flops = nullptr;
      if (k) {
        SpectralMap mk = m;
        mk.steps = *k;
        const FamilyCost c = family_cost(mk, rows, cols);
        matmuls = c.matmuls, flops = c.flops;
      }
      table.rows.push_back({sp.name, shape_text(sp.rows, sp.cols), static_cast<int64_t>(sp.sigma.size()),
                            quantile_linear(sorted, a.quantile), k ? json(*k) : json(nullptr), matmuls, flops});
    } catch (const UsageError& e) {
      skipped.push_back(sp.name + ": " + e.what());
    }
  }
  if (table.rows.empty()) throw Error("ns threshold: no spectrum could be evaluated; no output written");
  json header = map_header(m);
  header.erase("steps");
  header["quantile"] = a.quantile;
  header["tolerance"] = a.tolerance;
  header["max_steps"] = a.max_steps;
  if (!a.output.empty()) table.write(a.output, header);
  if (a.json) {
    header["matrices"] = table.as_json();
    std::cout << header.dump(2) << "\n";
  } else {
    std::cout << "p=" << m.power.text() << " " << iteration_name(m.iteration)
              << ": fewest steps (per root call) with |out/sigma^p - 1| <= " << format_g(a.tolerance, 6)
              << " for every sigma at or above the " << format_g(a.quantile, 6) << " quantile\n";
    table.print(std::cout);
  }
  return finish(skipped);
}

int run_power_simulate(const PowerSimulateArgs& a) {
  const SpectralMap m = a.map.to_map();
  const Precision prec = parse_precision(a.precision);
  auto backend = make_backend(BackendOptions{Device::Cpu});
  std::vector<std::string> skipped;
  NsTable table;
  table.columns = {"name", "shape", "count", "rel_error", "predicted_rel_error", "max_abs_error", "max_rel_error",
                   "matmuls", "flops"};
  for_each_matrix(a.paths, a.include, a.max_elements, skipped,
                  [&](const std::string& name, int64_t rows, int64_t cols, std::vector<double>& x,
                      const std::string& label) {
                    const FamilySimulation s = simulate_family(m, prec, x.data(), rows, cols, *backend, label);
                    table.rows.push_back({name, shape_text(rows, cols), s.spectrum.count, s.rel_error,
                                          s.predicted_rel_error, s.spectrum.max_abs_error, s.spectrum.max_rel_error,
                                          s.cost.matmuls, s.cost.flops});
                  });
  if (table.rows.empty()) throw Error("ns simulate: no matrix was simulated; no output written");
  json header = map_header(m);
  header["precision"] = precision_name(prec);
  if (!a.output.empty()) table.write(a.output, header);
  if (a.json) {
    header["matrices"] = table.as_json();
    std::cout << header.dump(2) << "\n";
  } else if (!a.quiet) {
    std::cout << m.describe() << " in " << precision_name(prec)
              << ": rel_error = min_c ||c X - U S^p V^T||_F / ||U S^p V^T||_F (SVD), against the float64 scalar map\n";
    table.print(std::cout);
  }
  return finish(skipped);
}

}  // namespace muspec::cli
