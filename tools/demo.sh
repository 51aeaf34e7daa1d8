#!/usr/bin/env bash
# Quick start, command 1: set up, build, and run muspec's main job on sample_data/:
#   scan      every matrix of every checkpoint (5 model sizes x 6 steps, weights and Muon momentum)
#   fit       per-layer power laws of the settled spectra across the 5 sizes
#   plot      those laws as an SVG figure
#   recommend per-layer NS steps and coefficients: measured for the largest run, and predicted
#             from the laws for a 4x larger model
#   report    all of it as one HTML page (open out/report.html in a browser)
# Results go to out/; the per-layer tables are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
mkdir -p out
muspec=./build/tools/muspec

echo "== muspec scan: singular values of every matrix"
$muspec scan sample_data -o out/spectra.h5 --summary out/summary.csv --json out/summary.json --max-rows 20

echo; echo "== muspec fit: q(M) = a * M^beta per operator type and depth quarter (quantiles 0.05 and 0.5)"
$muspec fit out/spectra.h5 -o out/laws.json --csv out/fits.csv --burn-in 100 --quantiles 0.05,0.5

echo; echo "== muspec plot: each group's settled q0.05 against model size, with its law (open out/laws.svg)"
$muspec plot out/laws.json -o out/laws.svg --params 1.4e6

echo; echo "== muspec recommend (measured): the largest run's momentum at its last step, checked matrix by matrix in bf16"
$muspec recommend --spectra out/spectra.h5 --run d80 --burn-in 100 --verify -o out/ns_config.json

echo; echo "== muspec recommend (predicted): a 1.4M-parameter model of 4 blocks, from the laws"
$muspec recommend --laws out/laws.json --params 1.4e6 --layers 4 -o out/ns_config_predicted.json

echo; echo "== muspec report: the scan, the laws and the measured configuration as one HTML page"
$muspec report out -o out/report.html

echo; echo "muspec demo: wrote out/spectra.h5 out/summary.{csv,json} out/laws.json out/fits.csv out/laws.svg out/ns_config.json out/ns_config_predicted.json out/report.html"
