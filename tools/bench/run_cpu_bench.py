#!/usr/bin/python3
"""CPU benchmark: muspec's spectral methods vs numpy.linalg.svd(compute_uv=False) on the same
float32 matrices, plus the peak memory of `muspec scan` on a checkpoint much larger than its
largest matrix. Prints a Markdown table. The comparison with every Python route is tools/bench/compare_cpu.py;
docs/benchmarks.md keeps this script's scan-memory figures.

    /usr/bin/python3 tools/bench/run_cpu_bench.py [--build build] [--sizes 512,1024,2048,4096] [--quick]
"""
import argparse
import json
import os
import pathlib
import resource
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np


def child_peak_rss(cmd):
    """Runs cmd in a fresh process and returns (stdout, its peak RSS in bytes). The command is
    started from a small intermediate Python, so the ru_maxrss it inherits is that process's
    (about 10 MiB), not this script's."""
    code = ("import resource,subprocess,sys;"
            "p=subprocess.run(sys.argv[1:],capture_output=True,text=True);"
            "sys.stderr.write(p.stderr);print(p.stdout,end='');"
            "print('\\nRSS',resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss*1024);"
            "sys.exit(p.returncode)")
    out = subprocess.run([sys.executable, "-c", code, *cmd], capture_output=True, text=True, check=True).stdout
    body, rss = out.rsplit("\nRSS ", 1)
    return body, int(rss)


NUMPY_CHILD = """
import sys, time, json, re, numpy as np
a = np.load(sys.argv[1]); best = 1e300
for _ in range(int(sys.argv[2])):
    t = time.perf_counter(); s = np.linalg.svd(a, compute_uv=False); best = min(best, time.perf_counter() - t)
print(json.dumps({"seconds": best, "sigma": np.sort(s.astype(np.float64)).tolist(),
                  "peak_rss_bytes": int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) * 1024}))
"""
# Peak memory is VmHWM of each process image: getrusage's ru_maxrss survives fork+exec and would
# report this (large) script's own high-water mark for every child.


def numpy_run(path, repeats):
    out = subprocess.run([sys.executable, "-c", NUMPY_CHILD, str(path), str(repeats)], capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)


def muspec_run(bench, method, path, repeats):
    out = subprocess.run([bench, method, str(repeats), str(path)], capture_output=True, text=True, check=True).stdout
    lines = [json.loads(l) for l in out.splitlines() if l.strip()]
    r = lines[0]
    r["peak_rss_bytes"] = lines[-1]["peak_rss_bytes"]
    return r


def accuracy(muspec_sigma, reference, floor):
    """Worst relative difference above the method's floor, against float64 LAPACK (numpy on a
    float64 copy of the same float32 matrix)."""
    m, r = np.asarray(muspec_sigma), np.asarray(reference)
    keep = r >= floor
    return float(np.max(np.abs(m[keep] - r[keep]) / r[keep]))


def write_checkpoint(path, shape, count, rng):
    """A safetensors file of `count` bf16 matrices, written by hand to the spec."""
    header, offset, blobs = {}, 0, []
    for i in range(count):
        a = rng.standard_normal(shape).astype(np.float32)
        bf16 = (a.view(np.uint32) >> 16).astype(np.uint16).tobytes()
        header[f"layers.{i}.mlp.up_proj.weight"] = {"dtype": "BF16", "shape": list(shape),
                                                    "data_offsets": [offset, offset + len(bf16)]}
        offset += len(bf16)
        blobs.append(bf16)
    h = json.dumps(header).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)
    return offset


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--sizes", default="512,1024,2048,4096")
    ap.add_argument("--rect", default="4096x11008")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="sizes 512,1024 only, no rectangular case")
    ap.add_argument("--ckpt-matrices", type=int, default=24,
                    help="matrices of 1024x2816 bf16 in the memory test's checkpoint (180 = 1 GiB)")
    ap.add_argument("--memory-only", action="store_true", help="only the scan memory test")
    args = ap.parse_args()
    bench = str(pathlib.Path(args.build) / "tools/bench/muspec_bench_spectra")
    muspec = str(pathlib.Path(args.build) / "tools/muspec")
    shapes = [(int(n), int(n)) for n in (["512", "1024"] if args.quick else args.sizes.split(","))]
    if args.rect and not args.quick:
        shapes.append(tuple(int(v) for v in args.rect.split("x")))
    rng = np.random.default_rng(0)
    print(f"numpy {np.__version__}; {os.cpu_count()} CPUs; times are the best of {args.repeats} runs\n")
    print("| shape | numpy svd (s) | muspec gram (s) | muspec svd (s) | muspec auto (s) | auto used | auto / numpy speed-up | "
          "auto max rel. err above floor | numpy peak RSS | muspec peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for m, n in ([] if args.memory_only else shapes):
            # A float32 matrix with a decaying spectrum (singular values 1 ... 1e-4).
            k = min(m, n)
            u, _ = np.linalg.qr(rng.standard_normal((m, k)))
            v, _ = np.linalg.qr(rng.standard_normal((n, k)))
            a = ((u * np.logspace(0, -4, k)) @ v.T).astype(np.float32)
            path = pathlib.Path(tmp) / f"m{m}x{n}.npy"
            np.save(path, a)
            ref = np.sort(np.linalg.svd(a.astype(np.float64), compute_uv=False))
            npy = numpy_run(path, args.repeats)
            gram = muspec_run(bench, "gram", path, args.repeats)
            svd = muspec_run(bench, "svd", path, 1 if m * n > 2048 * 2048 else args.repeats)
            auto = muspec_run(bench, "auto", path, args.repeats)
            err = accuracy(auto["sigma"], ref, auto["floor"])
            print(f"| {m}x{n} | {npy['seconds']:.3f} | {gram['seconds']:.3f} | {svd['seconds']:.3f} | "
                  f"{auto['seconds']:.3f} | {auto['used']} | {npy['seconds'] / auto['seconds']:.2f}x | {err:.1e} | "
                  f"{npy['peak_rss_bytes'] / 2**20:.0f} MiB | {auto['peak_rss_bytes'] / 2**20:.0f} MiB |", flush=True)
            path.unlink()

        # Memory: a checkpoint 24 times the size of its largest matrix.
        shape, count = (1024, 2816), args.ckpt_matrices
        ck = pathlib.Path(tmp) / "ckpt"
        ck.mkdir()
        nbytes = write_checkpoint(ck / "model.safetensors", shape, count, rng)
        t = time.perf_counter()
        _, rss = child_peak_rss([muspec, "scan", str(ck), "-q", "-o", str(pathlib.Path(tmp) / "s.h5")])
        secs = time.perf_counter() - t
        f64 = shape[0] * shape[1] * 8
        print(f"\n`muspec scan` of a {nbytes / 2**20:.0f} MiB bf16 checkpoint ({count} matrices of {shape[0]}x{shape[1]}): "
              f"{secs:.1f} s, peak RSS {rss / 2**20:.0f} MiB = {rss / f64:.1f}x the largest matrix in float64 "
              f"({f64 / 2**20:.0f} MiB).")


if __name__ == "__main__":
    main()
