#!/bin/sh
# Reproduces every file and number of docs/case-study/README.md from the sweep's checkpoints.
#
#   sh docs/case-study/run_analysis.sh            (from the repository root)
#
# Environment: MUSPEC (the binary, default build-h13/tools/muspec), RUNS (the checkpoints written
# by the training command in README.md, default /work/case-study-runs), WORK (scratch for the
# spectra files, which are not committed; default /tmp/muspec-case-study), PYTHON (/usr/bin/python3).
# Runs whose last checkpoint (1500) is missing are left out, so a partly finished sweep works.
set -eu
cd "$(dirname "$0")/../.."
M=${MUSPEC:-build-h13/tools/muspec}
RUNS=${RUNS:-/work/case-study-runs}
W=${WORK:-/tmp/muspec-case-study}
PY=${PYTHON:-/usr/bin/python3}
D=docs/case-study
LAST=1500
mkdir -p "$W" "$D/configs"
export OMP_NUM_THREADS=1 PYTHONPATH=tools/python

done_runs() {  # finished runs, optionally without those matching $1
  for r in "$RUNS"/h*-s*; do
    [ -d "$r/checkpoint-$LAST" ] || continue
    case "$(basename "$r")" in ${1:-__none__}) continue ;; esac
    echo "$r"
  done
}
RUN_DIRS=$(done_runs)
LARGEST=$(for r in $RUN_DIRS; do basename "$r"; done | sed 's/^h//; s/-s.*//' | sort -n | tail -1)

# 1. Scan: every checkpoint's momentum buffers (what NS sees), M = non-embedding parameters.
$M scan $RUN_DIRS -o "$W/spectra.h5" --param-count non-embedding --summary "$W/summary.csv" -q
gzip -n -9 -c "$W/summary.csv" > "$D/summary.csv.gz"

# 2. Laws: op type x relative-depth thirds (2 blocks of 6 per bucket), q = 0.05 and 0.5,
#    burn-in auto, Gaussian null (200 draws per shape), bootstrap over matrices and steps.
$M fit "$W/spectra.h5" -o "$D/laws.json" --csv "$D/fits.csv" --group optype,depth:3 --quantiles 0.05,0.5 \
  --params non-embedding --bootstrap 1000 --seed 1 --list-unsettled > "$D/fit.txt" 2> "$D/fit.stderr"
#    The last two blocks on their own (late-layer o/down), and a fixed burn-in for comparison.
$M fit "$W/spectra.h5" -o "$D/laws_last_blocks.json" --csv "$D/fits_last_blocks.csv" \
  --group optype,layer-from-end:2 --quantiles 0.05,0.5 --params non-embedding > "$D/fit_last_blocks.txt" 2>&1
$M fit "$W/spectra.h5" -o "$W/laws_burnin500.json" --csv "$D/fits_burnin500.csv" --group optype,depth:3 \
  --quantiles 0.05,0.5 --params non-embedding --burn-in 500 > "$D/fit_burnin500.txt" 2>&1

# 3. Prediction at width 256 (depth 6: 4,717,824 non-embedding parameters, 4x the largest).
$M predict --laws "$D/laws.json" --params 4717824 -o "$D/predictions_h256.csv" > /dev/null 2>&1

# 4. Measured recommendations per run: bf16 promise, lower bound over the settled checkpoints,
#    checked matrix by matrix (--verify).
for r in $RUN_DIRS; do
  n=$(basename "$r")
  $M recommend --spectra "$W/spectra.h5" --run "$n" --verify -o "$D/configs/ns_config_$n.json" \
    > "$D/configs/recommend_$n.txt" 2>&1 || true
done
cp "$D/configs/ns_config_h$LARGEST-s0.json" "$D/ns_config.json"

# 5. Predicted recommendation for the largest width from laws fitted WITHOUT it.
$M scan $(done_runs "h$LARGEST-*") -o "$W/spectra_small.h5" --param-count non-embedding -q
$M fit "$W/spectra_small.h5" -o "$W/laws_small.json" --group optype,depth:3 --quantiles 0.05 \
  --params non-embedding -q 2> /dev/null
P=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['non_embedding_params'])" \
  "$RUNS/h$LARGEST-s0/muspec-run.json")
$M recommend --laws "$W/laws_small.json" --params "$P" --model-config "$RUNS/h$LARGEST-s0/checkpoint-$LAST/config.json" \
  -o "$D/ns_config_predicted_h$LARGEST.json" \
  > "$D/recommend_predicted_h$LARGEST.txt" 2>&1 || true

# 6. Independent bf16 check (torch bf16 NS, numpy SVD) on the settled checkpoints.
{
  for r in $RUN_DIRS; do
    n=$(basename "$r")
    $PY $D/check_bf16.py --config "$D/configs/ns_config_$n.json" --run "$r" --steps 500,750,1000,1500 || true
  done
  echo "# seed transfer: the seed-0 config of each width on the seed-1 run"
  for r in $RUN_DIRS; do
    n=$(basename "$r"); case "$n" in *-s1) ;; *) continue ;; esac
    $PY $D/check_bf16.py --config "$D/configs/ns_config_${n%-s1}-s0.json" --run "$r" --steps 500,1000,1500 || true
  done
  echo "# predicted from the smaller widths, applied to the largest"
  for r in $(for x in $RUN_DIRS; do case "$x" in *"/h$LARGEST-"*) echo "$x" ;; esac; done); do
    $PY $D/check_bf16.py --config "$D/ns_config_predicted_h$LARGEST.json" --run "$r" --steps 500,1000,1500 || true
  done
} > "$D/check_bf16.txt" 2>&1

# 7. A plan of a small width transferred to a 12-block model (most steps per op type and depth third).
$M plan --spectra "$W/spectra.h5" --run h32-s0 --by layer --mean-steps 3.5 --transfer-layers 12 --depth-buckets 3 \
  -o "$D/plan_h32_to_12_blocks.json" > "$D/plan_h32.txt" 2>&1 || true

# 8. The tables of README.md.
$PY $D/tables.py --dir "$D" --runs "$RUNS" > "$D/tables.md"
