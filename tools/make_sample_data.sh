#!/usr/bin/env bash
# Regenerates sample_data/ (deterministic): synthetic matrices with exactly known spectra made
# by `muspec synth`, and a small momentum-like "model" written by NumPy.
#   tools/make_sample_data.sh            (needs ./build/tools/muspec and /usr/bin/python3 + numpy)
set -euo pipefail
cd "$(dirname "$0")/.."
MUSPEC=${MUSPEC:-./build/tools/muspec}
rm -rf sample_data/synthetic sample_data/numpy
# Heavy-tailed spectra of the kind trained weights show, stored as bf16 like real checkpoints.
$MUSPEC synth sample_data/synthetic --name power_0.5 --spectrum power:0.5 --shape 256x688 --count 3 --dtype bf16 --seed 1
# A Marchenko–Pastur bulk (what a random matrix of this aspect ratio has).
$MUSPEC synth sample_data/synthetic --name mp_0.37 --spectrum mp:0.372 --shape 256x688 --count 2 --dtype f32 --seed 2
# Ten decades of dynamic range: shows the gram floor and auto's fallback to svd.
$MUSPEC synth sample_data/synthetic --name logspace_1e-10 --spectrum logspace:1e-10,1 --shape 128x192 --count 1 --dtype f64 --seed 3
/usr/bin/python3 tools/python/make_sample_numpy.py sample_data/numpy
