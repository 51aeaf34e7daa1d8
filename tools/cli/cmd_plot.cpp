// muspec plot laws.json -o laws.svg [--quantile Q] [--params M] [--per-row N]
// Draws the figures a user looks at (docs/plots.md): for laws.json, each group's settled
// quantile against model size with the fitted power law and its confidence band.
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>

#include "cli/app.h"
#include "cli/commands.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "report/law_plot.h"
#include "laws/laws.h"

namespace muspec::cli {

namespace {

using namespace muspec::analysis;

struct PlotArgs {
  std::string input, out;
  LawPlotOptions laws;
  bool quiet = false;
};

int run_plot_command(const PlotArgs& a) {
  check_paths({{"input", a.input}}, {{"-o", a.out}});
  if (!ends_with(a.out, ".svg")) throw UsageError("-o: the file name must end in .svg, got '" + a.out + "'");
  if (ends_with(a.input, ".h5"))
    throw UsageError(a.input + ": muspec plot draws laws.json files written by `muspec fit`; for a scan, "
                     "fit it first or load its --summary CSV into pandas");
  const LawSet laws = read_laws_json(a.input);
  for (const auto& n : laws.notes) std::cerr << "muspec: note: " << n << "\n";
  write_file_atomically(a.out, laws_svg(laws, a.laws));
  if (!a.quiet) std::cout << "muspec: wrote " << a.out << "\n";
  return kExitOk;
}

}  // namespace

Action setup_plot(CLI::App& sub) {
  auto a = std::make_shared<PlotArgs>();
  sub.add_option("input", a->input, "laws.json written by `muspec fit`")->required();
  sub.add_option("-o,--output", a->out, "the figure to write (.svg)")->required();
  sub.add_option("--quantile", a->laws.quantile_level, "which quantile's laws (default: the smallest in the file)");
  sub.add_option("--params", a->laws.target_params, "also extend each law (dashed) to this model size, e.g. 7e10");
  sub.add_option("--per-row", a->laws.panels_per_row, "panels per row")->capture_default_str()->check(CLI::Range(1, 16));
  sub.add_flag("-q,--quiet", a->quiet, "print nothing on success");
  return [a] { return run_plot_command(*a); };
}

}  // namespace muspec::cli
