// One function per subcommand (one file each): declares the subcommand's options on `sub`
// and returns the action that runs it. The action returns an ExitCode.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace CLI { class App; }

namespace muspec::cli {

using Action = std::function<int()>;

Action setup_scan(CLI::App& sub);
Action setup_synth(CLI::App& sub);
Action setup_ns(CLI::App& sub);
Action setup_fit(CLI::App& sub);
Action setup_predict(CLI::App& sub);
Action setup_recommend(CLI::App& sub);
Action setup_plan(CLI::App& sub);
Action setup_plot(CLI::App& sub);
Action setup_merge(CLI::App& sub);
Action setup_report(CLI::App& sub);

struct Subcommand {
  const char* name;
  const char* summary;
  Action (*setup)(CLI::App&);
};

/// The table that drives parsing, `muspec help` and "did you mean".
const std::vector<Subcommand>& subcommands();

}  // namespace muspec::cli
