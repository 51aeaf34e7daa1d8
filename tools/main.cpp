// The muspec command-line tool. Everything happens in cli::run (tools/cli/app.cpp).
#include "cli/app.h"

int main(int argc, char** argv) { return muspec::cli::run(argc, argv); }
