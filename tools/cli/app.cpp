#include "cli/app.h"

#include "core/atomic_file.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "core/build_config.h"
#include "core/error.h"
#include "core/regular_file.h"

namespace muspec::cli {

const std::vector<Subcommand>& subcommands() {
  static const std::vector<Subcommand> table = {
      {"scan", "compute singular-value spectra of the matrices in checkpoint files", setup_scan},
      {"merge", "join the part stores of a sharded scan (scan --shard I/N) into one spectra.h5", setup_merge},
      {"synth", "write synthetic matrices with exactly known singular values", setup_synth},
      {"ns", "Newton-Schulz schedules: show, threshold, design, eval, simulate", setup_ns},
      {"fit", "fit per-layer-group power laws of settled spectral quantiles across model sizes", setup_fit},
      {"predict", "predict each group's spectral quantiles at a model size, with prediction intervals", setup_predict},
      {"recommend", "per-matrix NS steps and coefficients from spectra or scaling laws", setup_recommend},
      {"plan", "allocate NS steps per operator type or layer under a FLOP budget (max-min quality)", setup_plan},
      {"plot", "draw the scaling laws of a laws.json as an SVG figure", setup_plot},
      {"report", "one self-contained HTML page over spectra.h5, laws.json and ns_config.json", setup_report},
  };
  return table;
}

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string closest_subcommand(const std::string& word) {
  std::string best;
  size_t best_d = 3;  // suggest only close matches
  for (const auto& c : subcommands()) {
    const size_t d = edit_distance(word, c.name);
    if (d < best_d) best_d = d, best = c.name;
  }
  return best;
}

std::string overview() {
  std::string s = "muspec " + std::string(kVersion) +
                  " — singular-value spectra and Newton–Schulz budgets for Muon\n\n"
                  "usage: muspec <command> [options]\n\ncommands:\n";
  for (const auto& c : subcommands()) {
    char line[256];
    std::snprintf(line, sizeof line, "  %-10s %s\n", c.name, c.summary);
    s += line;
  }
  s += "  help       show this overview, or `muspec help <command>`\n\n"
       "exit codes: 0 ok, 1 some inputs skipped, 2 usage or fatal error\n";
  return s;
}

bool is_subcommand(const std::string& w) {
  return std::any_of(subcommands().begin(), subcommands().end(),
                     [&](const Subcommand& c) { return w == c.name; });
}

}  // namespace

void check_paths(const std::vector<NamedPath>& inputs, const std::vector<NamedPath>& outputs,
                 const ReadsInside& reads_inside) {
  for (const auto& in : inputs)
    if (!in.path.empty()) refuse_special_file(in.path);
  for (const auto& out : outputs) check_output_target(out.path);
  refuse_clobbering(inputs, outputs, reads_inside);
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

std::string format_g(double x, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, x);
  return buf;
}

std::string command_line_of(const CLI::App& sub, const std::string& name) {
  std::string line = "muspec " + name;
  for (const CLI::Option* o : sub.get_options()) {
    if (o->count() == 0 || o->get_name() == "--help") continue;
    line += " " + o->get_name();
    if (o->get_expected_min() > 0)
      for (const auto& r : o->results()) line += " " + r;
  }
  return line;
}

int run(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    if (args.size() >= 2 && args[0] == "help" && is_subcommand(args[1])) {
      // `muspec help ns eval` is `muspec ns eval --help`: every word after help, then --help.
      std::vector<char*> av = {argv[0]};
      for (size_t i = 1; i < args.size(); ++i) av.push_back(const_cast<char*>(args[i].c_str()));
      av.push_back(const_cast<char*>("--help"));
      return run(static_cast<int>(av.size()), av.data());
    }
    if (args.size() >= 2 && args[0] == "help") {
      std::cerr << "muspec: error: unknown command '" << args[1] << "'\n";
      return kExitFatal;
    }
    std::cout << overview();
    return args.empty() ? kExitFatal : kExitOk;
  }
  if (args[0] == "--version" || args[0] == "-V") {
    std::cout << "muspec " << kVersion << (kBuiltWithCuda ? " (CUDA)" : " (built without CUDA)") << "\n";
    return kExitOk;
  }
  if (args[0][0] != '-' && !is_subcommand(args[0])) {
    std::cerr << "muspec: error: unknown command '" << args[0] << "'";
    const std::string guess = closest_subcommand(args[0]);
    if (!guess.empty()) std::cerr << "; did you mean '" << guess << "'?";
    std::cerr << "\nrun 'muspec help' for the list of commands\n";
    return kExitFatal;
  }

  CLI::App app{"muspec: singular-value spectra and Newton-Schulz budgets for Muon", "muspec"};
  app.require_subcommand(1);
  Action action;
  for (const auto& c : subcommands()) {
    CLI::App* sub = app.add_subcommand(c.name, c.summary);
    Action a = c.setup(*sub);
    sub->callback([&action, a] { action = a; });
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e) == 0 ? kExitOk : kExitFatal;
  } catch (const CLI::ParseError& e) {
    std::cerr << "muspec: error: " << e.what() << "\n";
    return kExitFatal;
  }
  try {
    return action ? action() : kExitFatal;
  } catch (const Error& e) {
    std::cerr << "muspec: error: " << e.what() << "\n";
  } catch (const std::bad_alloc&) {
    std::cerr << "muspec: error: out of memory\n";
  } catch (const std::exception& e) {
    std::cerr << "muspec: error: " << e.what() << "\n";
  }
  return kExitFatal;
}

}  // namespace muspec::cli
