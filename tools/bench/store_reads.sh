#!/usr/bin/env bash
# Store reads at scale (docs/benchmarks.md, "Store reads"): a 10,000-record spectra.h5 from
# muspec_bench_store, then `fit`, `recommend` and `report` on it with two muspec binaries,
# interleaved over ROUNDS rounds (median wall seconds). OLD is a build without the /summary read
# path (e.g. the main branch before it), NEW this build; both read the same file.
#
#   tools/bench/store_reads.sh OLD_MUSPEC NEW_MUSPEC [N] [ROUNDS] [DIR]
set -euo pipefail
old=${1:?old muspec binary}
new=${2:?new muspec binary}
n=${3:-10000}
rounds=${4:-3}
dir=${5:-/tmp/muspec-bench-store}
here=$(cd "$(dirname "$0")/../.." && pwd)
bench=${MUSPEC_BENCH_STORE:-$here/build/tools/bench/muspec_bench_store}

"$bench" "$n" 1024 "$dir" "$rounds"   # JSON: in-process read times; leaves $dir/spectra.h5
store=$dir/spectra.h5

wall() {  # seconds of one command
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>&1 || true
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}

declare -A times
for ((r = 0; r < rounds; r++)); do
  for which in old new; do
    bin=$old
    [ "$which" = new ] && bin=$new
    out=$dir/out  # one output path for both (ns_config.json records its command line)
    mkdir -p "$out" "$dir/$which"
    times[$which-fit]+=" $(wall "$bin" fit "$store" -o "$out/laws.json" -q)"
    times[$which-recommend]+=" $(wall "$bin" recommend --spectra "$store" --run size3 -o "$out/ns_config.json" -q)"
    times[$which-report]+=" $(wall "$bin" report "$store" -o "$out/report.html" -q)"
    mv "$out"/* "$dir/$which/"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
for cmd in fit recommend report; do
  o=$(echo "${times[old-$cmd]}" | median)
  m=$(echo "${times[new-$cmd]}" | median)
  printf '%-10s old %7.2f s   new %7.2f s   speed-up %5.1fx\n' "$cmd" "$o" "$m" "$(echo "$o / $m" | bc -l)"
done
for f in laws.json ns_config.json; do  # same inputs, same results (up to the creation time)
  if cmp -s <(grep -v '"created"' "$dir/old/$f") <(grep -v '"created"' "$dir/new/$f"); then echo "$f: identical"; else echo "$f: DIFFERS"; fi
done
