// The muspec CLI: subcommand table, argument parsing, the one place errors become messages.
#pragma once

namespace muspec::cli {

/// Exit codes of every muspec command.
enum ExitCode : int {
  kExitOk = 0,       ///< everything asked for was done
  kExitSkipped = 1,  ///< done, but some inputs were skipped (listed on stderr)
  kExitFatal = 2,    ///< usage error or fatal error: no output written
};

int run(int argc, char** argv);

}  // namespace muspec::cli
