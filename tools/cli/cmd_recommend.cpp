// muspec recommend (--spectra spectra.h5 | --laws laws.json --params M (--layers L | --model-config
//                   config.json)) [--quantile Q] [--family F] [--band LO,HI] [--margin X]
//                   [--max-steps K] [--format muspec|torch-groups] -o ns_config.json
// Per-matrix NS steps and coefficients, written as the trainer's config file (docs/ns-config.md).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/app.h"
#include "cli/commands.h"
#include "core/error.h"
#include "ns/quality.h"
#include "configs/ns_config.h"
#include "configs/recommend.h"
#include "configs/recommend_laws.h"
#include "configs/recommend_family.h"
#include "cli/ns_power.h"
#include "store/spectra_store.h"
#include "configs/torch_groups.h"

namespace muspec::cli {

namespace {

struct RecommendArgs {
  std::string spectra, laws, model_config, naming, name_prefix, run, kind = "auto", band, format = "muspec", output,
      precision;
  PowerArgs power;                 ///< --power: the spectral family (version 2 config)
  double tolerance = 1e-2;
  std::string input = "momentum";
  std::optional<double> params;
  std::optional<int> layers;
  std::optional<int64_t> step;
  double level = 0.95;
  RecommendOptions rec;
  bool quiet = false, latest_only = false, max_steps_given = false;
  std::string command_line;
};

std::string g(double x, int digits = 4) { return format_g(x, digits); }

std::string flops_text(const std::optional<double>& f) { return f ? g(*f / 1e6, 4) : "-"; }

void print_entry_row(const std::string& name, const std::string& where, const NsConfigEntry& e,
                     const std::string& shape) {
  const std::string ratio = e.flops && e.default_flops ? g(*e.flops / *e.default_flops, 3) : "-";
  std::printf("%-46s %5s %-7s %-11s %10s %5d%s [%s, %s] %10s %10s %6s\n", name.c_str(), e.op_type.c_str(),
              where.c_str(), shape.c_str(), g(e.lower_bound).c_str(), e.setting.steps, e.requirement_met ? " " : "!",
              g(e.image.lo, 3).c_str(), g(e.image.hi, 3).c_str(), flops_text(e.flops).c_str(),
              flops_text(e.default_flops).c_str(), ratio.c_str());
}

void print_table(const NsConfig& c) {
  std::printf("%-46s %5s %-7s %-11s %10s %6s %-16s %10s %10s %6s\n", "parameter", "op", "layer", "shape", "lower",
              "steps", " output range", "MFLOP", "default", "ratio");
  for (const auto& p : c.parameters)
    print_entry_row(p.name.size() > 46 ? "…" + p.name.substr(p.name.size() - 45) : p.name, std::to_string(p.layer), p,
                    std::to_string(p.shape[0]) + "x" + std::to_string(p.shape[1]));
  for (const auto& p : c.patterns)
    print_entry_row(p.group, std::to_string(p.first_layer) + "-" + std::to_string(p.last_layer), p,
                    p.shape.size() == 2 ? std::to_string(p.shape[0]) + "x" + std::to_string(p.shape[1]) : "-");
  const NsConfigTotals t = ns_config_totals(c);
  if (t.flops && *t.default_flops > 0)
    std::printf("total NS flops per optimizer step: %s MFLOP vs %s MFLOP for uniform keller x5 (ratio %s, %s%% %s)\n",
                g(*t.flops / 1e6, 6).c_str(), g(*t.default_flops / 1e6, 6).c_str(),
                g(*t.flops / *t.default_flops, 4).c_str(),
                g(std::abs(1.0 - *t.flops / *t.default_flops) * 100.0, 3).c_str(),
                *t.flops <= *t.default_flops ? "saved" : "added");
  std::printf("band [%s, %s], quantile %s, margin %s, family %s; '!' = requirement not met within --max-steps\n",
              g(c.provenance.band.lo).c_str(), g(c.provenance.band.hi).c_str(), g(c.provenance.quantile).c_str(),
              g(c.provenance.margin).c_str(), c.provenance.family.c_str());
  const ns::Band pb = c.provenance.precision_band.value_or(c.provenance.band);
  std::printf("promised at %s: every direction at or above the lower bound ends in [%s, %s]%s\n", c.provenance.precision.c_str(),
              g(pb.lo).c_str(), g(pb.hi).c_str(), c.provenance.verified ? " (checked matrix by matrix, --verify)" : "");
  for (const auto& p : c.parameters)
    if (p.verified)
      std::printf("  %-44s %s gains [%s, %s], margin %s%s\n", p.name.size() > 44 ? ("…" + p.name.substr(p.name.size() - 43)).c_str() : p.name.c_str(),
                  c.provenance.precision.c_str(), g(p.verified->min_gain, 4).c_str(), g(p.verified->max_gain, 4).c_str(),
                  g(p.verified->margin, 3).c_str(), p.verified->added_steps ? (", +" + std::to_string(p.verified->added_steps) + " steps").c_str() : "");
}

// The records of --spectra chosen by --run, --step, --kind and --latest (both modes).
NsInputs measured_inputs(const RecommendArgs& a) {
  NsInputSelection sel;
  sel.run = a.run;
  sel.step = a.step;
  sel.kind = a.kind;
  sel.latest_only = a.latest_only;
  return select_ns_inputs(read_spectra_h5(a.spectra), a.spectra, sel);
}

NsConfig build_config(const RecommendArgs& a, std::vector<std::string>& skipped) {
  if (a.spectra.empty() == a.laws.empty()) throw UsageError("recommend: give exactly one of --spectra or --laws");
  if (!a.spectra.empty()) {
    if (a.params || a.layers || !a.model_config.empty())
      throw UsageError("recommend: --params, --layers and --model-config go with --laws, not --spectra");
    const NsInputs in = measured_inputs(a);
    skipped = in.skipped;
    if (!a.quiet) std::cerr << "muspec: using " << in.selection_note << "\n";
    NsConfig c = recommend_measured(in, a.rec, &skipped);
    c.provenance.inputs = {a.spectra};
    return c;
  }
  if (!a.params) throw UsageError("recommend: --laws needs --params M (the target model size)");
  LawsTarget t;
  t.params = *a.params;
  t.level = a.level;
  t.layers = a.layers;
  t.model_config = a.model_config;
  t.naming = a.naming;
  if (!a.run.empty() || a.step || a.kind != "auto")
    std::cerr << "muspec: warning: --run, --step and --kind select records of a spectra file; they are ignored with --laws\n";
  std::vector<std::string> notes;
  NsConfig c = recommend_predicted(a.laws, t, a.rec, &skipped, &notes);
  for (const auto& n : notes) std::cerr << "muspec: note: " << n << "\n";
  return c;
}

void print_family_table(const NsConfig& c) {
  std::printf("%-46s %5s %-5s %-11s %6s %10s %10s %10s %10s %6s\n", "parameter", "op", "layer", "shape", "steps", "max err",
              "matrix err", "MFLOP", "paper x15", "ratio");
  for (const auto& p : c.parameters) {
    const std::string name = p.name.size() > 46 ? "…" + p.name.substr(p.name.size() - 45) : p.name;
    std::printf("%-46s %5s %-5lld %-11s %5d%s %10s %10s %10s %10s %6s\n", name.c_str(), p.op_type.c_str(),
                static_cast<long long>(p.layer), (std::to_string(p.shape[0]) + "x" + std::to_string(p.shape[1])).c_str(),
                p.setting.steps, p.requirement_met ? " " : "!", g(p.family->max_rel_error, 3).c_str(),
                g(p.family->matrix_rel_error, 3).c_str(), flops_text(p.flops).c_str(), flops_text(p.default_flops).c_str(),
                p.flops && *p.default_flops > 0 ? g(*p.flops / *p.default_flops, 3).c_str() : "-");
  }
  const NsConfigTotals t = ns_config_totals(c);
  if (t.flops && *t.default_flops > 0)
    std::printf("total flops per optimizer step: %s MFLOP vs %s MFLOP for the paper's 15 steps (ratio %s)\n",
                g(*t.flops / 1e6, 6).c_str(), g(*t.default_flops / 1e6, 6).c_str(), g(*t.flops / *t.default_flops, 4).c_str());
  std::printf("%s: every sigma at or above the %s quantile within %s of sigma^p (scalar map%s); '!' = not met within --max-steps\n",
              c.provenance.family.c_str(), g(c.provenance.quantile).c_str(), g(c.spectral_map->tolerance).c_str(),
              c.provenance.verified ? (", checked per direction at " + c.provenance.precision).c_str() : "");
}

// Most iterations per root call --power searches unless --max-steps says otherwise: small
// normalized eigenvalues grow only x1.5 per coupled Newton step, so 15 can be too few.
constexpr int kFamilyMaxSteps = 60;

// --power P: the spectral family (analysis/configs/recommend_family.h), measured mode only.
int run_recommend_family(const RecommendArgs& a) {
  if (a.spectra.empty() || !a.laws.empty())
    throw UsageError("recommend --power needs --spectra: the maps depend on the whole spectrum, which laws do not predict");
  if (!a.band.empty() || a.rec.family != "keller") throw UsageError("--band and --family apply to NS (p = 0); with --power use --tolerance");
  if (a.format != "muspec") throw UsageError("recommend --power writes --format muspec only (torch.optim.Muon has no such member)");
  FamilyOptions f;
  f.map = a.power.to_map();
  RecommendOptions rec = a.rec;
  if (!a.max_steps_given) rec.max_steps = kFamilyMaxSteps;
  if (f.map.power.num == 0)
    throw UsageError("--power 0 is Muon: use recommend without --power (NS coefficients, version 1 config)");
  f.tolerance = a.tolerance;
  f.input = a.input;
  f.precision = ns::parse_precision(a.precision.empty() ? "f32" : a.precision);
  const NsInputs in = measured_inputs(a);
  std::vector<std::string> skipped = in.skipped;
  if (!a.quiet) std::cerr << "muspec: using " << in.selection_note << "\n";
  NsConfig c = recommend_family(in, rec, f, &skipped);
  c.provenance.inputs = {a.spectra};
  c.provenance.command = a.command_line;
  if (c.parameters.empty()) throw Error("recommend: no parameter could be recommended; no output written");
  if (!a.quiet) print_family_table(c);
  for (const auto& n : c.notes) std::cerr << "muspec: note: " << n << "\n";
  std::vector<std::string> unmet;  // one warning for the run, not one per parameter
  double worst = 0.0;
  for (const auto& p : c.parameters)
    if (!p.requirement_met) unmet.push_back(p.name), worst = std::max(worst, p.family->max_rel_error);
  if (!unmet.empty())
    std::cerr << "muspec: warning: " << unmet.size() << " of " << c.parameters.size() << " parameters (e.g. " << unmet.front()
              << "): no step count up to " << rec.max_steps << " brings every sigma at or above the quantile within "
              << g(a.tolerance) << " of sigma^p"
              << (c.provenance.verified ? " at " + c.provenance.precision + " (notes above)"
                                        : " (worst error " + g(worst, 3) + "); the regularization shift " + a.power.regularization +
                                              " biases small singular values (--regularization 0,0 shows the steps without it)")
              << "; wrote " << rec.max_steps << " steps for them\n";
  write_json_atomically(a.output, ns_config_to_json(c));
  for (const auto& s : skipped) std::cerr << "muspec: skipped " << s << "\n";
  if (!a.quiet) std::cerr << "muspec: wrote " << a.output << "\n";
  return skipped.empty() ? kExitOk : kExitSkipped;
}

int run_recommend(RecommendArgs a) {
  check_paths({{"--spectra", a.spectra}, {"--laws", a.laws}, {"--model-config", a.model_config}, {"--family", a.rec.family}},
              {{"-o", a.output}});
  if (!a.power.power.empty()) return run_recommend_family(a);
  if (!a.band.empty()) a.rec.band = ns::parse_band(a.band);
  a.rec.precision = ns::parse_precision(a.precision.empty() ? "bf16" : a.precision);
  a.precision = ns::precision_name(a.rec.precision);  // messages name it
  if (a.rec.verify && a.spectra.empty()) throw UsageError("recommend: --verify needs --spectra (the measured matrices)");
  const ConfigFormat format = parse_config_format(a.format);
  std::vector<std::string> skipped;
  NsConfig c = build_config(a, skipped);
  c.provenance.command = a.command_line;
  if (!a.quiet) print_table(c);
  for (const auto& n : c.notes) std::cerr << "muspec: note: " << n << "\n";
  for (const auto& p : c.parameters)
    if (p.stability && p.stability->fragile)
      std::cerr << "muspec: note: " << p.name << ": fragile: its lower bound is only " << g(*p.stability->threshold_ratio, 3)
                << "x the smallest one " << p.setting.steps << " steps cover; a slightly smaller quantile needs "
                << p.setting.steps + 1 << "\n";
  auto warn_unmet = [&](const std::string& who, const NsConfigEntry& e) {
    if (!e.requirement_met)
      std::cerr << "muspec: warning: " << who << ": no " << a.rec.family << " schedule within " << a.rec.max_steps
                << " steps is promised to bring s >= " << g(e.lower_bound) << " into the band at " << a.precision << "; wrote "
                << e.setting.steps << " steps\n";
  };
  for (const auto& p : c.parameters) warn_unmet(p.name, p);
  for (const auto& p : c.patterns)
    warn_unmet(p.group + " (blocks " + std::to_string(p.first_layer) + "-" + std::to_string(p.last_layer) + ")", p);
  std::vector<std::string> notes;
  write_config(c, format, a.rec.max_steps, a.name_prefix, a.output, &notes);
  for (const auto& n : notes) std::cerr << "muspec: torch-groups approximation: " << n << "\n";
  for (const auto& s : skipped) std::cerr << "muspec: skipped " << s << "\n";
  if (!a.quiet) std::cerr << "muspec: wrote " << a.output << "\n";
  return skipped.empty() ? kExitOk : kExitSkipped;
}

}  // namespace

Action setup_recommend(CLI::App& sub) {
  auto a = std::make_shared<RecommendArgs>();
  sub.add_option("--spectra", a->spectra, "spectra file written by `muspec scan -o` (measured mode)");
  sub.add_option("--laws", a->laws, "laws file written by `muspec fit` (predicted mode)");
  sub.add_option("--params", a->params, "target model size M in parameters (with --laws)");
  sub.add_option("--layers", a->layers, "number of blocks of the target model (with --laws)");
  sub.add_option("--model-config", a->model_config,
                 "target model's config.json (with --laws): layers, shapes for FLOPs, naming family");
  sub.add_option("--naming", a->naming, "naming family of the name patterns (with --laws; default: the model config's, else llama)");
  sub.add_option("--name-prefix", a->name_prefix, "prefix of concrete names in torch-groups output for --laws (default: model. for llama)");
  sub.add_option("--level", a->level, "prediction-interval level (with --laws)")->capture_default_str();
  sub.add_option("--run", a->run, "run to use when the spectra file holds several");
  sub.add_option("--step", a->step,
                 "training step to use (default: every checkpoint of the run, the lower bound from the settled ones)");
  sub.add_flag("--latest", a->latest_only, "use only the latest step of each parameter, not the settled checkpoints");
  sub.add_option("--burn-in", a->rec.burn_in, "which checkpoints count as settled: auto | STEP | FRACTION (as in fit)")
      ->capture_default_str();
  sub.add_option("--fragile-ratio", a->rec.fragile_ratio,
                 "mark a recommendation fragile when its lower bound is within this factor of the next step threshold")
      ->capture_default_str();
  sub.add_option("--kind", a->kind, "auto (momentum when present, else weight) or an exact record kind")
      ->capture_default_str();
  sub.add_option("--quantile", a->rec.quantile, "quantile level of sigma/||G||_F that must land in the band")
      ->capture_default_str();
  sub.add_option("--family", a->rec.family, "keller | polar-express | designed | <catalog name> | schedule.json")
      ->capture_default_str();
  sub.add_option("--band", a->band, "target band LO,HI (default: the family's)");
  sub.add_option("--margin", a->rec.margin, "safety margin: lower bound = quantile value / margin")
      ->capture_default_str();
  sub.add_option("--max-steps", a->rec.max_steps, "most NS steps to consider")->capture_default_str();
  sub.add_option("--precision", a->precision,
                 "f64 | f32 | bf16: arithmetic the trainer runs NS in; the promised band is widened for it (docs/ns-config.md). "
                 "Default bf16; with --power, f32 (what --verify runs)");
  sub.add_option("--power", a->power.power,
                 "spectral family U S^p V^T, p in (0, 1]: iterations per layer instead of NS coefficients (docs/spectral-family.md)");
  sub.add_option("--iteration", a->power.iteration, "with --power: coupled-newton | guo-higham (default: the paper's)");
  sub.add_option("--regularization", a->power.regularization, "with --power: ABS,REL of the shift ABS + REL*tr(G)/n")
      ->capture_default_str();
  sub.add_option("--tolerance", a->tolerance, "with --power: every sigma at or above the quantile within this of sigma^p")
      ->capture_default_str();
  sub.add_option("--input", a->input, "with --power: momentum | rms_normalized (what the trainer feeds the map)")
      ->capture_default_str();
  sub.add_flag("--verify", a->rec.verify,
               "run NS at --precision on every measured matrix (read again from its checkpoint) and add steps until every "
               "direction at or above the lower bound lands in the promised band");
  sub.add_option("--format", a->format, "muspec | torch-groups")->capture_default_str();
  sub.add_option("-o,--output", a->output, "configuration file to write")->required();
  sub.add_flag("-q,--quiet", a->quiet, "no table");
  return [a, &sub] {
    a->command_line = command_line_of(sub, "recommend");
    a->max_steps_given = sub.count("--max-steps") > 0;
    return run_recommend(*a);
  };
}

}  // namespace muspec::cli
