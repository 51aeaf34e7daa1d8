#!/usr/bin/env bash
# Quick start, command 2: set up, build, and run the whole test suite, twice: a normal
# Release build, then a build under AddressSanitizer + UBSan (every bad-input test included).
set -euo pipefail
cd "$(dirname "$0")/.."
# python3-torch: the trainer adapter (tools/python/muspec_torch) is tested against real PyTorch.
# chromium: `muspec report` pages are checked in a real headless browser (tests/python/test_report_browser.py).
# r-base-core r-cran-powerlaw: the layer metrics' power-law fit is tested against R's poweRlaw.
# libopenmpi-dev, openmpi-bin: `mpirun -n N muspec scan` (MUSPEC_MPI; tests/test_scan_mpi.cpp).
MUSPEC_EXTRA_PACKAGES="python3-torch chromium r-base-core r-cran-powerlaw libopenmpi-dev openmpi-bin" tools/setup.sh
ctest --test-dir build --output-on-failure -j "$(nproc)"
if [ "${MUSPEC_SKIP_SANITIZERS:-0}" != "1" ]; then
  MUSPEC_BUILD_DIR=build-asan tools/setup.sh -DCMAKE_BUILD_TYPE=Debug -DMUSPEC_SANITIZE=ON -DMUSPEC_BUILD_BENCH=OFF
  # No leak suppressions: muspec never runs libhdf5 on an untrusted store in its own process
  # (lib/store/isolated_read.h), so what libhdf5 keeps on malformed files stays in the child.
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j "$(nproc)"
fi
