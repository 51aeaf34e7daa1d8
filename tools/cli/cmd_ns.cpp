// muspec ns {show, threshold, design, eval, simulate}: the Newton–Schulz calculus on the
// command line (docs/ns.md). eval and simulate live in cmd_ns_eval.cpp.
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "cli/app.h"
#include "cli/commands.h"
#include "cli/ns_power.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "ns/catalog.h"
#include "ns/cost.h"
#include "ns/design.h"
#include "ns/quality.h"
#include "ns/scalar_map.h"

namespace muspec::cli {

// Defined in cmd_ns_eval.cpp.
Action setup_ns_eval(CLI::App& sub);
Action setup_ns_simulate(CLI::App& sub);

namespace {

using namespace muspec::ns;

std::string g(double x, int digits = 6) { return format_g(x, digits); }

std::string band_text(const Band& b) { return "[" + g(b.lo) + ", " + g(b.hi) + "]"; }

// ---------------------------------------------------------------- show
struct ShowArgs {
  std::string schedule;
  bool json = false;
};

int run_show(const ShowArgs& a) {
  const Schedule s = resolve_schedule(a.schedule);
  if (a.json) {
    std::cout << schedule_to_json(s).dump(2) << "\n";
    return kExitOk;
  }
  const int k = s.resolve_steps(std::nullopt);
  std::printf("schedule %s (%s; default %d steps; past the end: %s)\n", s.name.c_str(), family_name(s.family), k,
              past_end_name(s.past_end));
  if (!s.source.empty()) std::printf("source: %s\n", s.source.c_str());
  std::printf("normalization: X / (||X||_F * (1 + %s) + %s)\n", g(s.normalization.delta).c_str(),
              g(s.normalization.epsilon).c_str());
  std::printf("band: %s%s\n", band_text(s.target_band()).c_str(), s.band ? "" : " (family default)");
  std::printf("%4s %22s %22s %22s %9s %9s\n", "step", "a", "b", "c", "p(1)", "matmuls");
  for (size_t i = 0; i < s.polys.size(); ++i) {
    const OddPoly& p = s.polys[i];
    std::printf("%4zu %22.17g %22.17g %22.17g %9.5f %9d\n", i + 1, p.a, p.b, p.c, p(1.0), step_matmuls(p));
  }
  std::printf("gain at zero over %d steps: %s\n", k, g(s.gain_at_zero(k), 5).c_str());
  const Interval img = map_image(s, k, Interval{1e-3, 1.0});
  std::printf("outputs of s in [1e-3, 1] after %d steps: [%s, %s]\n", k, g(img.lo).c_str(), g(img.hi).c_str());
  std::printf("cost of %d steps on a 4096x4096 matrix: %.4g TFLOP\n", k, schedule_flops(s, k, 4096, 4096) / 1e12);
  return kExitOk;
}

// ---------------------------------------------------------------- threshold
struct ThresholdArgs {
  std::string schedule, band;
  std::optional<int> steps;
  std::optional<double> lower;
  bool json = false;
  PowerThresholdArgs family;  // --power: the spectral family (cmd_ns_power.cpp)
};

int run_power_threshold_from(const ThresholdArgs& a) {
  if (!a.band.empty() || a.lower) throw UsageError("--band and --lower apply to NS schedules; with --power use --tolerance and --quantile");
  if (a.steps) throw UsageError("ns threshold --power searches the steps; give --max-steps instead of --steps");
  PowerThresholdArgs p = a.family;
  p.map.schedule = a.schedule;
  p.json = a.json;
  return run_power_threshold(p);
}

int run_threshold(const ThresholdArgs& a) {
  if (!a.family.map.power.empty()) return run_power_threshold_from(a);
  if (a.schedule.empty()) throw UsageError("give --schedule (or --power for the spectral family)");
  const Schedule s = resolve_schedule(a.schedule);
  const int k = s.resolve_steps(a.steps);
  const Band band = a.band.empty() ? s.target_band() : parse_band(a.band);
  if (a.lower) check_unit_input(*a.lower, "--lower");
  const auto t = threshold(s, k, band);
  const auto cov = coverage_lower(s, k, band);
  std::optional<int> need;
  if (a.lower) need = min_steps(s, *a.lower, band, 1000);
  if (a.json) {
    nlohmann::json j = {{"schedule", s.name}, {"steps", k}, {"band", {band.lo, band.hi}},
                        {"threshold", t ? nlohmann::json(*t) : nlohmann::json(nullptr)},
                        {"coverage_lower", cov ? nlohmann::json(*cov) : nlohmann::json(nullptr)},
                        {"gain_at_zero", s.gain_at_zero(k)}};
    if (a.lower) {
      j["lower"] = *a.lower;
      j["min_steps"] = need ? nlohmann::json(*need) : nlohmann::json(nullptr);
    }
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  std::printf("schedule %s, %d steps, band %s (inputs s = sigma/||G||_F)\n", s.name.c_str(), k, band_text(band).c_str());
  if (t)
    std::printf("threshold: %s  (smallest s whose output reaches %s)\n", g(*t, 6).c_str(), g(band.lo).c_str());
  else
    std::printf("threshold: none  (no s in (0, 1] reaches %s)\n", g(band.lo).c_str());
  if (cov)
    std::printf("coverage:  %s  (smallest l such that every s in [l, 1] lands in the band)\n", g(*cov, 6).c_str());
  else
    std::printf("coverage:  none  (s = 1 itself does not land in the band)\n");
  std::printf("gain at zero: %s\n", g(s.gain_at_zero(k), 5).c_str());
  if (a.lower) {
    if (need)
      std::printf("fewest steps so that every s in [%s, 1] lands in the band: %d\n", g(*a.lower).c_str(), *need);
    else
      std::printf("no number of steps up to 1000 brings every s in [%s, 1] into the band\n", g(*a.lower).c_str());
  }
  return kExitOk;
}

// ---------------------------------------------------------------- design
struct DesignArgs {
  DesignOptions opt;
  bool json = false;
  std::string output, name = "designed";
};

int run_design(const DesignArgs& a) {
  const DesignResult r = design_schedule(a.opt);
  const Schedule s = r.to_schedule(a.name);
  if (!a.output.empty()) save_schedule_file(s, a.output);
  if (a.json) {
    std::cout << schedule_to_json(s).dump(2) << "\n";
  } else {
    std::printf("greedy minimax design: l = %s, U = %s, %d steps, degree %d, cushion %s, safety %s %s\n",
                g(a.opt.lower).c_str(), g(a.opt.upper).c_str(), a.opt.steps, a.opt.degree, g(r.options.cushion.value_or(0.0), 17).c_str(),
                g(a.opt.safety).c_str(), a.opt.safety_inside ? "(inside the recursion)" : "(after, all but the last)");
    std::printf("%4s %12s %12s %11s %22s %22s %22s %s\n", "step", "l_t", "u_t", "E", "a", "b", "c", "notes");
    for (size_t i = 0; i < r.steps.size(); ++i) {
      const DesignStep& st = r.steps[i];
      std::string notes;
      if (st.closed_form) notes += " closed-form";
      if (st.recentred) notes += " cushioned+recentred";
      if (!st.converged) notes += " NOT-LEVELLED";
      std::printf("%4zu %12.6g %12.6g %11.4g %22.17g %22.17g %22.17g%s\n", i + 1, st.interval.lo, st.interval.hi,
                  st.minimax_error, st.poly.a, st.poly.b, st.poly.c, notes.c_str());
    }
    std::printf("outputs of s in [%s, %s]: [%.12g, %.12g] (exact image); worst deviation from 1: %s\n",
                g(a.opt.lower).c_str(), g(a.opt.upper).c_str(), r.image.lo, r.image.hi, g(r.worst_error, 4).c_str());
    std::printf("status: %s: %s\n", design_status_name(r.status), r.message.c_str());
    if (!a.output.empty()) std::printf("wrote %s\n", a.output.c_str());
  }
  if (r.status != DesignStatus::Converged)
    std::cerr << "muspec: warning: design " << design_status_name(r.status) << ": " << r.message << "\n";
  return r.status == DesignStatus::RemezFailed ? kExitSkipped : kExitOk;
}

}  // namespace

Action setup_ns(CLI::App& sub) {
  sub.require_subcommand(1);
  auto chosen = std::make_shared<Action>();
  auto bind = [&](CLI::App* child, Action act) { child->callback([chosen, act] { *chosen = act; }); };

  {
    auto a = std::make_shared<ShowArgs>();
    CLI::App* c = sub.add_subcommand("show", "print a schedule: built-in name or schedule file");
    c->add_option("schedule", a->schedule, "keller | cubic | polar-express | you-5 | jiacheng-6 | deepseek-v4 | FILE.json")
        ->required();
    c->add_flag("--json", a->json, "print the schedule file (JSON) instead of the table");
    bind(c, [a] { return run_show(*a); });
  }
  {
    auto a = std::make_shared<ThresholdArgs>();
    CLI::App* c = sub.add_subcommand("threshold", "smallest normalized singular value a schedule lifts into the band; "
                                     "with --power, fewest steps per matrix");
    c->add_option("-s,--schedule", a->schedule, "built-in name or schedule file");
    c->add_option("-k,--steps", a->steps, "number of NS steps (default: the schedule's)");
    c->add_option("--band", a->band, "target band LO,HI (default: the schedule family's, docs/ns.md)");
    c->add_option("--lower", a->lower, "also report the fewest steps so that every s in [LOWER, 1] lands in the band");
    c->add_flag("--json", a->json, "print JSON");
    PowerThresholdArgs& f = a->family;
    c->add_option("--power", f.map.power, "spectral family U S^p V^T, p in [0, 1] (docs/spectral-family.md)");
    c->add_option("--iteration", f.map.iteration, "with --power: coupled-newton | guo-higham | newton-schulz");
    c->add_option("--regularization", f.map.regularization, "with --power: ABS,REL of the shift ABS + REL*tr(G)/n")
        ->capture_default_str();
    c->add_option("--spectra", f.spectra, "with --power: spectra file written by `muspec scan -o`");
    c->add_option("--sigma", f.sigma, "with --power: singular values of one matrix (text, .npy, .npz, .safetensors)");
    c->add_option("--quantile", f.quantile, "with --power: every sigma at or above this quantile must converge")
        ->capture_default_str();
    c->add_option("--tolerance", f.tolerance, "with --power: converged when |out/sigma^p - 1| <= this")
        ->capture_default_str();
    c->add_option("--max-steps", f.max_steps, "with --power: search up to this many steps")->capture_default_str();
    c->add_option("-o,--output", f.output, "with --power: write the table as CSV (or JSON when the name ends in .json)");
    bind(c, [a] { return run_threshold(*a); });
  }
  {
    auto a = std::make_shared<DesignArgs>();
    CLI::App* c = sub.add_subcommand("design", "optimal per-step coefficients (greedy minimax, Polar Express recursion)");
    c->add_option("-l,--lower", a->opt.lower, "lower bound l of the normalized singular values, in (0, U)")->required();
    c->add_option("-u,--upper", a->opt.upper, "upper bound U, in (l, 1]")->capture_default_str();
    c->add_option("-k,--steps", a->opt.steps, "number of steps K, 1..100")->required();
    c->add_option("--degree", a->opt.degree, "polynomial degree: 5 or 3")->capture_default_str();
    c->add_option("--cushion", a->opt.cushion,
                  "fit on [max(l, cushion*u), u]; 0 disables (default: Polar Express's 0.0240733 for degree 5, 0 for 3)");
    c->add_option("--safety", a->opt.safety, "safety factor sf >= 1: p(x) -> p(x/sf) on all but the last step")
        ->capture_default_str();
    c->add_flag("--safety-inside", a->opt.safety_inside, "apply the safety factor inside the recursion (default: after)");
    c->add_option("--tolerance", a->opt.tolerance, "report convergence when all outputs end within this of 1")
        ->capture_default_str();
    c->add_option("--name", a->name, "schedule name written to the file")->capture_default_str();
    c->add_flag("--json", a->json, "print the schedule file (JSON) instead of the table");
    c->add_option("-o,--output", a->output, "write the schedule file here (atomically)");
    bind(c, [a] { return run_design(*a); });
  }
  CLI::App* eval = sub.add_subcommand("eval", "what a schedule does to measured spectra (band and energy fractions)");
  bind(eval, setup_ns_eval(*eval));
  CLI::App* sim = sub.add_subcommand("simulate", "run the matrix NS iteration and compare with the scalar map");
  bind(sim, setup_ns_simulate(*sim));

  return [chosen] { return *chosen ? (*chosen)() : static_cast<int>(kExitFatal); };
}

}  // namespace muspec::cli
