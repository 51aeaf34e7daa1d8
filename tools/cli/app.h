// The muspec CLI: subcommand table, argument parsing, the one place errors become messages.
#pragma once

#include <string>
#include <vector>

#include "core/output_guard.h"

namespace CLI { class App; }

namespace muspec::cli {

/// Exit codes of every muspec command.
enum ExitCode : int {
  kExitOk = 0,       ///< everything asked for was done
  kExitSkipped = 1,  ///< done, but some inputs were skipped (listed on stderr)
  kExitFatal = 2,    ///< usage error or fatal error: no output written
};

int run(int argc, char** argv);

/// Every command calls this before any work with the paths it reads and writes: an input that
/// is a FIFO, socket or device is refused (a reader would block on it), and so is an output
/// that resolves to an input, to a file `reads_inside` an input directory, or to another output
/// (core/output_guard.h). Empty paths are skipped. Both errors exit with code 2.
void check_paths(const std::vector<NamedPath>& inputs, const std::vector<NamedPath>& outputs,
                 const ReadsInside& reads_inside = nullptr);

/// True when `s` ends with `tail` (file-name extensions of -o and inputs).
bool ends_with(const std::string& s, const std::string& tail);

/// printf's %.*g as a string: the number format of every CLI table.
std::string format_g(double x, int digits);

/// "muspec <name> --opt value ..." as the user gave it (for the provenance of output files).
std::string command_line_of(const CLI::App& sub, const std::string& name);

}  // namespace muspec::cli
