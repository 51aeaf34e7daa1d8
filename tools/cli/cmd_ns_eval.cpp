// muspec ns eval  (--schedule S [--steps K] | --power P [--iteration I] [--steps K])
//                 (--spectra spectra.h5 | --sigma FILE) [--band LO,HI]
// muspec ns simulate (--schedule S | --power P) [--steps K] [--precision f64|f32|bf16] FILES...
// (docs/ns.md, docs/spectral-family.md). Both print a per-matrix table and can write it as CSV
// or JSON (-o). With --power they run the spectral family (cmd_ns_power.cpp).
#include <CLI/CLI.hpp>

#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/app.h"
#include "cli/commands.h"
#include "cli/ns_common.h"
#include "cli/ns_power.h"
#include "core/error.h"
#include "io/tensor_source.h"
#include "ns/catalog.h"
#include "ns/quality.h"
#include "ns/simulate.h"
#include "spectra/backend.h"

namespace muspec::cli {

namespace {

using namespace muspec::ns;
using nlohmann::json;

std::string g(double x, int digits = 6) { return format_g(x, digits); }

// Options of the spectral family shared by eval and simulate.
struct FamilyOptions {
  std::string power, iteration, regularization = "1e-6,1e-4";
  void add(CLI::App& c) {
    c.add_option("--power", power, "spectral family U S^p V^T: p in [0, 1], e.g. 1/2, 0.25 (docs/spectral-family.md)");
    c.add_option("--iteration", iteration, "with --power: coupled-newton | guo-higham | newton-schulz (default: the paper's)");
    c.add_option("--regularization", regularization, "with --power: ABS,REL of the shift ABS + REL*tr(G)/n")
        ->capture_default_str();
  }
  PowerArgs args(const std::string& schedule, std::optional<int> steps) const {
    return PowerArgs{power, iteration, schedule, regularization, steps};
  }
  void check_plain(const std::string& schedule) const {
    if (!iteration.empty()) throw UsageError("--iteration needs --power");
    if (schedule.empty()) throw UsageError("give --schedule (or --power for the spectral family)");
  }
};

// ---------------------------------------------------------------- eval
struct EvalArgs {
  std::string schedule, spectra, sigma, band, output, quantiles = "0.01,0.05,0.1,0.5";
  std::optional<int> steps;
  double tolerance = 1e-2;
  FamilyOptions family;
  bool quiet = false;
};

/// A schedule given as a file (not a catalog name) is an input too.
std::string schedule_file(const std::string& schedule) {
  std::error_code ec;
  return std::filesystem::exists(schedule, ec) ? schedule : "";
}

int run_eval(const EvalArgs& a) {
  check_paths({{"--spectra", a.spectra}, {"--sigma", a.sigma}, {"--schedule", schedule_file(a.schedule)}}, {{"-o", a.output}});
  if (!a.family.power.empty()) {
    if (!a.band.empty()) throw UsageError("--band applies to NS schedules; with --power use --tolerance");
    return run_power_eval(PowerEvalArgs{a.family.args(a.schedule, a.steps), a.spectra, a.sigma, a.output,
                                        a.quantiles, a.tolerance, a.quiet});
  }
  a.family.check_plain(a.schedule);
  const Schedule s = resolve_schedule(a.schedule);
  const int k = s.resolve_steps(a.steps);
  const Band band = a.band.empty() ? s.target_band() : parse_band(a.band);

  std::vector<std::string> skipped;
  const std::vector<NsSpectrum> spectra = load_spectra(a.spectra, a.sigma, skipped, "ns eval");
  const auto t = threshold(s, k, band);
  NsTable table;
  table.columns = {"name", "shape", "count", "s_min", "s_max", "out_min", "out_max", "in_band", "band_fraction",
                   "energy_fraction", "worst_deviation", "below_threshold"};
  for (const NsSpectrum& sp : spectra) {
    SpectrumQuality q;
    try {
      q = evaluate_spectrum(s, k, sp.sigma, band, sp.frobenius);
    } catch (const UsageError& e) {
      skipped.push_back(sp.name + ": " + e.what());
      continue;
    }
    int64_t below = 0;
    for (double v : sp.sigma) below += (t && v / q.frobenius < *t) ? 1 : 0;
    table.rows.push_back({sp.name, shape_text(sp.rows, sp.cols), q.count, q.input_range.lo, q.input_range.hi,
                          q.output_range.lo, q.output_range.hi, q.in_band, q.band_fraction, q.energy_fraction,
                          q.worst_deviation, below});
  }
  for (const auto& m : skipped) std::cerr << "muspec: skipped " << m << "\n";
  if (table.rows.empty()) throw Error("ns eval: no spectrum could be evaluated; no output written");

  const json header = {{"schedule", s.name}, {"steps", k}, {"band", {band.lo, band.hi}},
                       {"threshold", t ? json(*t) : json(nullptr)}};
  if (!a.output.empty()) table.write(a.output, header);
  if (!a.quiet) {
    std::cout << "schedule " << s.name << ", " << k << " steps, band [" << g(band.lo) << ", " << g(band.hi)
              << "]; threshold s* = " << (t ? g(*t, 4) : std::string("none")) << " (s = sigma/||G||_F)\n";
    table.print(std::cout);
  }
  return skipped.empty() ? kExitOk : kExitSkipped;
}

// ---------------------------------------------------------------- simulate
struct SimulateArgs {
  std::string schedule, precision = "f64", output, include, device = "cpu";
  std::vector<std::string> paths;
  std::optional<int> steps;
  int64_t max_elements = int64_t{1} << 22;
  FamilyOptions family;
  bool quiet = false, json = false;
};

int run_power_simulate_from(const SimulateArgs& a) {
  if (a.device != "cpu") throw UsageError("ns simulate --power runs on the CPU only (--device cpu)");
  PowerSimulateArgs p;
  p.map = a.family.args(a.schedule, a.steps);
  p.precision = a.precision, p.output = a.output, p.include = a.include, p.paths = a.paths;
  p.max_elements = a.max_elements, p.quiet = a.quiet, p.json = a.json;
  return run_power_simulate(p);
}

int run_simulate(const SimulateArgs& a) {
  std::vector<NamedPath> inputs = {{"--schedule", schedule_file(a.schedule)}};
  for (const auto& p : a.paths) inputs.push_back({"input", p});
  check_paths(inputs, {{"-o", a.output}}, [](const std::string& p) { return is_tensor_file_name(p); });
  if (!a.family.power.empty()) return run_power_simulate_from(a);
  a.family.check_plain(a.schedule);
  const Schedule s = resolve_schedule(a.schedule);
  const int k = s.resolve_steps(a.steps);
  const Precision prec = parse_precision(a.precision);
  const Device device = parse_device(a.device);
  if (device == Device::Auto) throw UsageError("ns simulate --device: cpu or cuda");
  if (device == Device::Cuda && cuda_device_count() == 0)
    make_backend(BackendOptions{Device::Cuda});  // throws the clear "built without CUDA" / "no device" error
  auto backend = make_backend(BackendOptions{Device::Cpu});
  std::vector<std::string> skipped;
  NsTable table;
  table.columns = {"name", "shape", "count", "predicted_min", "predicted_max", "measured_min", "measured_max",
                   "max_abs_error", "max_rel_error", "rms_error"};
  for_each_matrix(a.paths, a.include, a.max_elements, skipped,
                  [&](const std::string& name, int64_t rows, int64_t cols, std::vector<double>& x,
                      const std::string& label) {
                    const Agreement ag = simulate_matrix(s, k, prec, x.data(), rows, cols, *backend, label, device);
                    table.rows.push_back({name, shape_text(rows, cols), ag.count, ag.predicted.front(),
                                          ag.predicted.back(), ag.measured.front(), ag.measured.back(),
                                          ag.max_abs_error, ag.max_rel_error, ag.rms_error});
                  });
  for (const auto& m : skipped) std::cerr << "muspec: skipped " << m << "\n";
  if (table.rows.empty()) throw Error("ns simulate: no matrix was simulated; no output written");
  json header = {{"schedule", s.name}, {"steps", k}, {"precision", precision_name(prec)}, {"device", a.device}};
  if (!a.output.empty()) table.write(a.output, header);
  if (a.json) {
    header["matrices"] = table.as_json();
    std::cout << header.dump(2) << "\n";
  } else if (!a.quiet) {
    std::cout << "schedule " << s.name << ", " << k << " steps, " << precision_name(prec) << " on " << a.device
              << ": output singular values (LAPACK) against the float64 scalar map\n";
    table.print(std::cout);
  }
  return skipped.empty() ? kExitOk : kExitSkipped;
}

}  // namespace

Action setup_ns_eval(CLI::App& c) {
  auto a = std::make_shared<EvalArgs>();
  c.add_option("-s,--schedule", a->schedule,
               "built-in name or schedule file (with --power: the NS schedule of p = 0, default keller)");
  c.add_option("-k,--steps", a->steps, "number of steps (default: the schedule's; with --power the paper's 15 per root)");
  c.add_option("--spectra", a->spectra, "spectra file written by `muspec scan -o`");
  c.add_option("--sigma", a->sigma,
               "singular values of one matrix: a text file (whitespace-separated) or .npy/.npz/.safetensors "
               "(each 1-D tensor is one spectrum)");
  c.add_option("--band", a->band, "target band LO,HI (default: the schedule family's, docs/ns.md)");
  a->family.add(c);
  c.add_option("--tolerance", a->tolerance, "with --power: a value has converged when |out/sigma^p - 1| <= this")
      ->capture_default_str();
  c.add_option("--quantiles", a->quantiles, "with --power: report the relative error at these quantile levels")
      ->capture_default_str();
  c.add_option("-o,--output", a->output, "write the table as CSV (or JSON when the name ends in .json)");
  c.add_flag("-q,--quiet", a->quiet, "no table on the terminal");
  return [a] { return run_eval(*a); };
}

Action setup_ns_simulate(CLI::App& c) {
  auto a = std::make_shared<SimulateArgs>();
  c.add_option("paths", a->paths, "tensor files (.safetensors, .npy, .npz) or directories")->required();
  c.add_option("-s,--schedule", a->schedule,
               "built-in name or schedule file (with --power: the NS schedule of p = 0, default keller)");
  c.add_option("-k,--steps", a->steps, "number of steps (default: the schedule's; with --power the paper's 15 per root)");
  a->family.add(c);
  c.add_option("--precision", a->precision, "f64 | f32 | bf16 (emulated: every product rounded to bf16)")
      ->capture_default_str();
  c.add_option("--device", a->device, "cpu (Eigen; bf16 emulated) | cuda (cuBLAS; bf16 storage, fp32 accumulation)")
      ->capture_default_str();
  c.add_option("--include", a->include, "only tensors whose name matches this regex");
  c.add_option("--max-elements", a->max_elements, "skip matrices with more entries than this (CPU time)")
      ->capture_default_str();
  c.add_option("-o,--output", a->output, "write the table as CSV (or JSON when the name ends in .json)");
  c.add_flag("--json", a->json, "print the table as JSON on stdout");
  c.add_flag("-q,--quiet", a->quiet, "no table on the terminal");
  return [a] { return run_simulate(*a); };
}

}  // namespace muspec::cli
