#!/usr/bin/env bash
# Runs on a lent GPU machine over a tree that carries .gpukit (tools/bench/gpu_kit.sh): the GPU
# tests ([cuda]: GPU vs CPU backend on known spectra and on every stored layout, GPU NS vs the
# scalar map; MUSPEC_GPU_SKIP_TESTS=1 skips them), then the GPU benchmark
# (tools/bench/run_gpu_bench.py; its options pass through). Logs go to $OUT.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/muspec-gpu-out}
mkdir -p /tmp/gpukit "$OUT" && tar -C /tmp/gpukit -xJf .gpukit/gpukit-libs.tar.xz
libdirs=/tmp/gpukit/lib
for so in 'libcusolver.so.12*' 'libcublas.so.13*' 'libcublasLt.so.13*' 'libnvJitLink.so.13*' 'libcusparse.so.12*'; do
  hit=$(find /usr/local /opt /usr/lib -name "$so" 2>/dev/null | head -1)
  [ -n "$hit" ] && libdirs="$libdirs:$(dirname "$hit")"
done
export LD_LIBRARY_PATH="$libdirs:${LD_LIBRARY_PATH:-}"
export MUSPEC_CUDA_PLUGIN=/tmp/gpukit/lib/libmuspec_cuda.so  # (it is also found beside libmuspec_core.so)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
if ldd .gpukit/tools/muspec /tmp/gpukit/lib/libmuspec_cuda.so .gpukit/tools/bench/* | grep "not found"; then
  echo "gpu_run: missing libraries"; exit 2
fi
if [ "${MUSPEC_GPU_SKIP_TESTS:-0}" != "1" ]; then
  .gpukit/tests/muspec_tests "[cuda]" 2>&1 | tee "$OUT/gpu_tests.log" | tail -25
fi
PYTHONUNBUFFERED=1 python3 tools/bench/run_gpu_bench.py --build .gpukit --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu_bench.log" | tail -40
