#!/usr/bin/env bash
# Packs a CUDA build of muspec for a lent GPU machine that has the CUDA toolkit and PyTorch but
# none of muspec's Debian libraries (see docs/benchmarks.md, "GPU"):
#   .gpukit/tools/muspec, .gpukit/tools/bench/muspec_bench_spectra, .gpukit/tests/muspec_tests
#   .gpukit/gpukit-libs.tar.xz   the shared libraries they need (OpenBLAS, LAPACKE, HDF5, ...),
#                                except glibc/libstdc++ and the CUDA libraries the GPU machine has.
# Then, on the GPU machine (carrying .gpukit): bash tools/bench/gpu_run.sh [bench options]
# MUSPEC_GPUKIT_BUILD=build packs an existing Release build configured with CUDA instead of
# configuring build-cuda.
set -euo pipefail
cd "$(dirname "$0")/../.."
b=${MUSPEC_GPUKIT_BUILD:-build-cuda}
tools/setup.sh >/dev/null  # packages only; the CUDA build is separate
cmake -S . -B "$b" -DCMAKE_BUILD_TYPE=Release -DMUSPEC_CUDA=ON >/dev/null
cmake --build "$b" -j "$(nproc)" --target muspec muspec_tests muspec_bench_spectra muspec_probe_eigensolvers muspec_cuda
mkdir -p .git/info && grep -qx "/.gpukit/" .git/info/exclude 2>/dev/null || echo "/.gpukit/" >> .git/info/exclude
rm -rf .gpukit && mkdir -p .gpukit/tools/bench .gpukit/tests .gpukit/lib
cp "$b"/tools/muspec .gpukit/tools/
cp "$b"/tools/bench/muspec_bench_spectra "$b"/tools/bench/muspec_probe_eigensolvers .gpukit/tools/bench/
cp "$b"/tests/muspec_tests .gpukit/tests/
strip .gpukit/tools/muspec .gpukit/tools/bench/* .gpukit/tests/muspec_tests
# The libraries of every binary and of the GPU backend plugin (muspec itself does not link CUDA).
cp "$b"/lib/libmuspec_cuda.so .gpukit/lib/
for bin in "$b"/tools/muspec "$b"/lib/libmuspec_cuda.so "$b"/tests/muspec_tests \
           "$b"/tools/bench/muspec_bench_spectra "$b"/tools/bench/muspec_probe_eigensolvers; do
  ldd "$bin"
done | awk '{print $3}' | sort -u |
  grep -v -E '^$|/libc\.so|/libm\.so|ld-linux|libpthread|/libdl\.so|/librt\.so|libstdc\+\+|libgcc_s|cusolver|cublas|nvJitLink|cusparse' |
  while read -r lib; do cp -L "$lib" .gpukit/lib/; done
tar -C .gpukit -cJf .gpukit/gpukit-libs.tar.xz lib && rm -rf .gpukit/lib
du -sh .gpukit
echo "device command: bash tools/bench/gpu_run.sh   (carry: .gpukit)"
