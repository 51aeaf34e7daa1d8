// The muspec CLI: subcommand table, argument parsing, the one place errors become messages.
#pragma once

#include <string>

namespace CLI { class App; }

namespace muspec::cli {

/// Exit codes of every muspec command.
enum ExitCode : int {
  kExitOk = 0,       ///< everything asked for was done
  kExitSkipped = 1,  ///< done, but some inputs were skipped (listed on stderr)
  kExitFatal = 2,    ///< usage error or fatal error: no output written
};

int run(int argc, char** argv);

/// True when `s` ends with `tail` (file-name extensions of -o and inputs).
bool ends_with(const std::string& s, const std::string& tail);

/// printf's %.*g as a string: the number format of every CLI table.
std::string format_g(double x, int digits);

/// "muspec <name> --opt value ..." as the user gave it (for the provenance of output files).
std::string command_line_of(const CLI::App& sub, const std::string& name);

}  // namespace muspec::cli
