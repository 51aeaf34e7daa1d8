#!/usr/bin/env bash
# Builds the libFuzzer targets with clang into build-fuzz and runs each one after the other
# for SECONDS (default 60). Usage: tools/fuzz.sh [SECONDS] [TARGET...]
#   TARGET: fuzz_pickle fuzz_zip fuzz_safetensors fuzz_npy fuzz_torch fuzz_store fuzz_store_transport fuzz_json fuzz_dcp fuzz_deepspeed fuzz_journal fuzz_discover (default: all)
# Environment: MUSPEC_FUZZ_BUILD_DIR (default build-fuzz), MUSPEC_FUZZ_ARGS (extra libFuzzer
# flags, e.g. "-max_len=65536"). New inputs go to BUILD/corpus/TARGET (the seeds in
# tests/fuzz/corpus/TARGET are read, never written); crashes to BUILD/artifacts/TARGET/;
# logs to BUILD/logs/TARGET.log. Exits 1 when any target reported a finding.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_pickle fuzz_zip fuzz_safetensors fuzz_npy fuzz_torch fuzz_store fuzz_store_transport fuzz_json fuzz_dcp fuzz_deepspeed fuzz_journal fuzz_discover)
build=${MUSPEC_FUZZ_BUILD_DIR:-build-fuzz}

if ! command -v clang++ >/dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  echo "fuzz.sh: needs clang++ and the libFuzzer runtime; on Debian bookworm:" >&2
  echo "  apt-get install -y clang libclang-rt-14-dev" >&2
  exit 2
fi

cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DMUSPEC_FUZZ=ON \
  -DMUSPEC_BUILD_TESTS=OFF -DMUSPEC_BUILD_BENCH=OFF -DMUSPEC_CUDA=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$build/logs"
status=0
summary=()
for t in "${targets[@]}"; do
  mkdir -p "$build/corpus/$t" "$build/artifacts/$t"
  echo "== $t: ${seconds}s"
  rc=0
  seeds=()  # fuzz_store and fuzz_journal build their seed inside the target: no seed folder
  [ -d "tests/fuzz/corpus/$t" ] && seeds=("tests/fuzz/corpus/$t")
  # shellcheck disable=SC2086
  "$build/tests/fuzz/$t" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$build/artifacts/$t/" ${MUSPEC_FUZZ_ARGS:-} \
    "$build/corpus/$t" "${seeds[@]}" >"$build/logs/$t.log" 2>&1 || rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$build/logs/$t.log" | grep -o '[0-9]*$' || true)
  last=$(grep -E '^#[0-9]+' "$build/logs/$t.log" | tail -n 1 || true)
  cov=$(echo "$last" | grep -oE 'cov: [0-9]+ ft: [0-9]+' || true)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$build/logs/$t.log" | grep -o '[0-9]*$' || true)
  if [ "$rc" -ne 0 ]; then
    status=1
    summary+=("$t: FINDING (exit $rc) after ${runs:-?} runs; see $build/logs/$t.log and $build/artifacts/$t/")
    grep -E 'ERROR|FUZZ FINDING|SUMMARY|runtime error' "$build/logs/$t.log" | head -n 5 || true
  else
    summary+=("$t: ${runs:-?} runs, ${rate:-?} exec/s, ${cov:-cov ?}, no findings")
  fi
done
echo
printf '%s\n' "${summary[@]}"
exit "$status"
