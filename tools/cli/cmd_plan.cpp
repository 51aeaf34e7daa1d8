// muspec plan --spectra EARLY_SCAN.h5 (--budget FLOPS | --mean-steps K) [--by optype|layer]
//             [--family F] [--band LO,HI] [--max-steps K] [--format muspec|torch-groups] -o ns_config.json
//             [--transfer-layers L | --model-config config.json] [--depth-buckets N] [--naming F]
// Observe-then-commit NS budget allocation (docs/ns-config.md "Budget planning").
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "cli/app.h"
#include "cli/commands.h"
#include "core/error.h"
#include "ns/quality.h"
#include "configs/ns_config.h"
#include "configs/ns_plan.h"
#include "configs/plan_transfer.h"
#include "configs/recommend.h"
#include "store/spectra_store.h"
#include "configs/torch_groups.h"

namespace muspec::cli {

namespace {

struct PlanArgs {
  std::string spectra, by = "optype", band, run, kind = "auto", format = "muspec", output, precision = "bf16";
  std::string name_prefix;
  std::optional<int64_t> step;
  PlanOptions plan;
  PlanTransfer transfer;  ///< used when target_layers or model_config is set
  bool quiet = false;
  std::string command_line;
};

std::string g(double x, int digits = 4) { return format_g(x, digits); }

// The best uniform allocation within the budget (same steps everywhere), for comparison.
void print_uniform_baseline(const PlanResult& r) {
  const size_t steps = r.groups.front().options.size();
  for (size_t k = steps; k-- > 0;) {
    double f = 0.0, worst = 1.0, sum = 0.0;
    for (const auto& grp : r.groups) {
      f += grp.options[k].flops;
      worst = std::min(worst, grp.options[k].worst);
      sum += grp.options[k].quality_sum;
    }
    if (f <= r.budget * (1 + 1e-12)) {
      std::printf("best uniform allocation within the budget: %zu steps everywhere, %s MFLOP, worst %s, mean %s\n",
                  k + 1, g(f / 1e6, 6).c_str(), g(worst).c_str(), g(sum / static_cast<double>(r.matrices)).c_str());
      return;
    }
  }
}

void print_plan(const PlanResult& r) {
  std::printf("%-16s %8s %6s %12s %9s %9s\n", "group", "matrices", "steps", "MFLOP", "worst", "mean");
  for (const auto& grp : r.groups) {
    const PlanOption& o = grp.options[grp.chosen];
    std::printf("%-16s %8zu %6d %12s %9s %9s\n", grp.name.c_str(), grp.members.size(), o.steps,
                g(o.flops / 1e6, 6).c_str(), g(o.worst).c_str(),
                g(o.quality_sum / static_cast<double>(grp.members.size())).c_str());
  }
  const Allocation& a = r.allocation;
  const double n = static_cast<double>(r.matrices);
  std::printf("budget %s MFLOP, used %s MFLOP; quality = share of singular values landing in the band\n",
              g(r.budget / 1e6, 6).c_str(), g(a.flops / 1e6, 6).c_str());
  std::printf("worst quality %s (optimal); mean quality %s (upper bound %s, gap %s)\n", g(a.worst, 6).c_str(),
              g(a.quality_sum / n, 6).c_str(), g(a.quality_sum_upper / n, 6).c_str(),
              g((a.quality_sum_upper - a.quality_sum) / n, 3).c_str());
  if (a.unconstrained)
    std::printf("the budget covers the most expensive allocation (%s MFLOP): every group takes its best step count\n",
                g(a.dearest_flops / 1e6, 6).c_str());
  print_uniform_baseline(r);
}

bool wants_transfer(const PlanArgs& a) { return a.transfer.target_layers != 0 || !a.transfer.model_config.empty(); }

// The measured model's block count (the runs of one plan share it).
int source_layers(const NsInputs& in) {
  int64_t layers = 0;
  for (const NsMatrix& m : in.matrices) layers = std::max(layers, m.num_layers);
  return static_cast<int>(layers);
}

// --transfer-layers / --model-config: rewrite the plan as (op type, depth bucket) patterns.
std::vector<std::string> transfer(PlanArgs& a, const NsInputs& in, PlanResult& r) {
  std::vector<std::string> uncovered;
  a.transfer.source_layers = source_layers(in);
  transfer_plan(r.config, a.transfer, &uncovered);
  if (!a.quiet)
    std::printf("transferred to %d blocks: %zu name patterns from %d relative-depth buckets per op type "
                "(most steps within a bucket)\n",
                r.config.extra["target"]["layers"].get<int>(), r.config.patterns.size(), a.transfer.depth_buckets);
  for (const auto& u : uncovered) std::cerr << "muspec: not covered: " << u << "\n";
  return uncovered;
}

int run_plan(PlanArgs a) {
  check_paths({{"--spectra", a.spectra}, {"--family", a.plan.family}, {"--model-config", a.transfer.model_config}},
              {{"-o", a.output}});
  if (!a.band.empty()) a.plan.band = ns::parse_band(a.band);
  a.plan.precision = ns::parse_precision(a.precision);
  if (a.by == "optype") a.plan.by = PlanGrouping::OpType;
  else if (a.by == "layer") a.plan.by = PlanGrouping::Layer;
  else throw UsageError("--by '" + a.by + "': expected optype or layer");
  const ConfigFormat format = parse_config_format(a.format);
  check_plan_options(a.plan);  // before reading the file
  const SpectraFile f = read_spectra_h5(a.spectra);
  NsInputSelection sel;
  sel.run = a.run;
  sel.step = a.step;
  sel.kind = a.kind;
  const NsInputs in = select_ns_inputs(f, a.spectra, sel);
  if (!a.quiet) std::cerr << "muspec: using " << in.selection_note << "\n";
  PlanResult r = plan_ns_budget(in, a.plan);
  r.config.provenance.inputs = {a.spectra};
  r.config.provenance.command = a.command_line;
  if (!a.quiet) print_plan(r);
  const std::vector<std::string> uncovered = wants_transfer(a) ? transfer(a, in, r) : std::vector<std::string>{};
  std::vector<std::string> notes;
  write_config(r.config, format, a.plan.max_steps, a.name_prefix, a.output, &notes);
  for (const auto& n : notes) std::cerr << "muspec: torch-groups approximation (may exceed the budget): " << n << "\n";
  std::vector<std::string> skipped = in.skipped;
  skipped.insert(skipped.end(), r.skipped.begin(), r.skipped.end());
  for (const auto& s : skipped) std::cerr << "muspec: skipped " << s << "\n";
  if (!a.quiet) std::cerr << "muspec: wrote " << a.output << "\n";
  return skipped.empty() && uncovered.empty() ? kExitOk : kExitSkipped;
}

}  // namespace

Action setup_plan(CLI::App& sub) {
  auto a = std::make_shared<PlanArgs>();
  sub.add_option("--spectra", a->spectra, "early-training scan (`muspec scan -o`)")->required();
  sub.add_option("--budget", a->plan.budget, "total NS flops per optimizer step over all Muon matrices");
  sub.add_option("--mean-steps", a->plan.mean_steps, "budget = cost of this many steps on every matrix");
  sub.add_option("--by", a->by, "optype | layer: what shares one step count")->capture_default_str();
  sub.add_option("--family", a->plan.family, "keller | polar-express | designed | <catalog name> | schedule.json")
      ->capture_default_str();
  sub.add_option("--band", a->band, "target band LO,HI (default: the family's)");
  sub.add_option("--precision", a->precision,
                 "f64 | f32 | bf16: arithmetic the promise is made for (band widened, bf16 floor; docs/ns-config.md)")
      ->capture_default_str();
  sub.add_option("--max-steps", a->plan.max_steps, "most NS steps per group")->capture_default_str();
  sub.add_option("--quantile", a->plan.quantile, "quantile whose lower bound is reported per matrix (and designed for)")
      ->capture_default_str();
  sub.add_option("--cells", a->plan.cells, "budget discretization of the mean-quality knapsack, 1 to 10000000")->capture_default_str();
  sub.add_option("--run", a->run, "run to use when the spectra file holds several");
  sub.add_option("--step", a->step, "training step to use (default: the latest per parameter)");
  sub.add_option("--kind", a->kind, "auto (momentum when present, else weight) or an exact record kind")
      ->capture_default_str();
  sub.add_option("--format", a->format, "muspec | torch-groups (one repeated triple per group, for torch.optim.Muon)")
      ->capture_default_str();
  sub.add_option("--transfer-layers", a->transfer.target_layers,
                 "write name patterns for a model with this many blocks instead of per-parameter entries");
  sub.add_option("--model-config", a->transfer.model_config,
                 "target model's config.json for the transfer: blocks, shapes for FLOPs, naming family");
  sub.add_option("--depth-buckets", a->transfer.depth_buckets,
                 "relative-depth buckets per op type for the transfer (as fit --group optype,depth:N)")
      ->capture_default_str();
  sub.add_option("--naming", a->transfer.naming, "naming family of the transfer's patterns (default: the model config's, else llama)");
  sub.add_option("--name-prefix", a->name_prefix, "prefix of concrete names in torch-groups output of a transfer (default: model. for llama)");
  sub.add_option("-o,--output", a->output, "configuration file to write")->required();
  sub.add_flag("-q,--quiet", a->quiet, "no table");
  return [a, &sub] {
    a->command_line = command_line_of(sub, "plan");
    return run_plan(*a);
  };
}

}  // namespace muspec::cli
