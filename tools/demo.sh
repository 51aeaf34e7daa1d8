#!/usr/bin/env bash
# Quick start, command 1: set up, build, and run muspec's main job on sample_data/.
# Results go to out/ (spectra.h5, summary.csv, summary.json); the table is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
mkdir -p out
./build/tools/muspec scan sample_data -o out/spectra.h5 --summary out/summary.csv --json out/summary.json
