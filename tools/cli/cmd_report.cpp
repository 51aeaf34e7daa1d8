// muspec report INPUTS... -o report.html
// One self-contained HTML page over a scan's spectra.h5, a fit's laws.json and a
// recommendation's ns_config.json (or a directory holding them, like the demo's out/).
// What each section shows: docs/report.md.
#include <CLI/CLI.hpp>

#include <filesystem>
#include <iostream>
#include <memory>

#include "cli/app.h"
#include "cli/commands.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "report/html_report.h"

namespace muspec::cli {

namespace {

struct ReportArgs {
  std::vector<std::string> inputs;
  std::string out;
  bool quiet = false;
};

int run_report_command(const ReportArgs& a) {
  std::vector<NamedPath> inputs;
  for (const auto& p : a.inputs) inputs.push_back({"input", p});
  // Inside an input directory the report reads these three names; -o must not replace one.
  check_paths(inputs, {{"-o", a.out}}, [](const std::string& path) {
    const std::string name = std::filesystem::path(path).filename().string();
    return name == "spectra.h5" || name == "laws.json" || name == "ns_config.json";
  });
  if (!ends_with(a.out, ".html")) throw UsageError("-o: the file name must end in .html, got '" + a.out + "'");
  const analysis::ReportInputs in = analysis::load_report_inputs(a.inputs);
  if (in.laws)
    for (const auto& n : in.laws->notes) std::cerr << "muspec: note: " << n << "\n";
  write_file_atomically(a.out, analysis::html_report(in));
  if (!a.quiet) std::cout << "muspec: wrote " << a.out << " (" << in.records.size() << " matrices)\n";
  return kExitOk;
}

}  // namespace

Action setup_report(CLI::App& sub) {
  auto a = std::make_shared<ReportArgs>();
  sub.add_option("inputs", a->inputs, "spectra.h5, laws.json, ns_config.json, or a directory holding them")
      ->required();
  sub.add_option("-o,--output", a->out, "the page to write (.html)")->required();
  sub.add_flag("-q,--quiet", a->quiet, "print nothing on success");
  return [a] { return run_report_command(*a); };
}

}  // namespace muspec::cli
