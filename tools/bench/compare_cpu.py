#!/usr/bin/python3
"""CPU comparison (issue 21): muspec against every usual Python route to the singular values, on
the same float32 matrices, in one run.

    /usr/bin/python3 tools/bench/compare_cpu.py [--build build] [--shapes 512,1024,2048,4096,4096x11008]
        [--rounds 2] [--big-rounds 1] [--scan-matrices 24] [--scan-hidden 1024] [--child-timeout 600] [--quick]
        [--routes muspec_auto,numpy_gram,torch_f32,scipy_f32]   (muspec_auto always runs)

Per shape, `--rounds` interleaved rounds; in each round every route runs once, in a fresh process
(so each has its own peak RSS, VmHWM) on the same .npy file:
  muspec auto / gram / svd   muspec_bench_spectra: decode of the mapped .npy to float64 + method
  muspec gram32              the float32 Gram route (explicit method, its own floor: its accuracy
                             column is measured above gram32's floor, ~2e-2 sigma_max)
  numpy svd f32 / f64        np.linalg.svd(compute_uv=False): sgesdd / dgesdd of a float64 copy
  numpy eigh Gram f64        float64 copy, G = A^T A of the smaller side (numpy uses dsyrk), eigvalsh
  torch svdvals f32 / f64    torch.linalg.svdvals (CPU)
  scipy svdvals f32          scipy.linalg.svdvals(check_finite=False)
Times exclude process start and imports (in favour of Python). Accuracy: largest relative
difference from float64 LAPACK (numpy svd f64 of the same float32 matrix) over the singular
values at or above gram's reliable floor. "dgemm roof": float64 GEMM GF/s measured with numpy
in the same round; muspec's ratio to it counts the Gram route's flops (k^2 m for dsyrk + 4/3 k^3
for the tridiagonal reduction, k = min(m, n)). Then a Llama-shaped scan: `--scan-matrices`
float32 tensors (q, k, v, o, gate, up, down per layer; hidden size `--scan-hidden`, GQA kv =
hidden/4, MLP = 11/4 hidden) in one safetensors file, `muspec scan` (whole process, HDF5 output
included) against Python loops over the same file (time inside the loop, reading included).
Prints JSON lines and Markdown tables; nproc, load average and OPENBLAS_CORETYPE are recorded.
"""
import argparse
import json
import os
import pathlib
import statistics
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

CHILD = r"""
import json, re, sys, time
import numpy as np
route, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
a = np.load(path)
def gram_eigh(a):
    x = a.astype(np.float64)
    g = x.T @ x if x.shape[0] >= x.shape[1] else x @ x.T
    return np.sqrt(np.clip(np.linalg.eigvalsh(g), 0, None))
if route.startswith("torch"):
    import torch
    t = torch.from_numpy(a if route == "torch_f32" else a.astype(np.float64))
    t0 = time.perf_counter()
    if route == "torch_f64": t = torch.from_numpy(a).double()
    s = torch.linalg.svdvals(t).double().numpy()
elif route == "scipy_f32":
    import scipy.linalg
    t0 = time.perf_counter(); s = scipy.linalg.svdvals(a, check_finite=False)
elif route == "dgemm":
    d = min(a.shape[0], 2048)
    x = np.random.default_rng(0).standard_normal((d, d))
    x @ x; t0 = time.perf_counter(); x @ x
    s = np.zeros(1)
else:
    t0 = time.perf_counter()
    if route == "numpy_f32": s = np.linalg.svd(a, compute_uv=False)
    elif route == "numpy_f64": s = np.linalg.svd(a.astype(np.float64), compute_uv=False)
    elif route == "numpy_gram": s = gram_eigh(a)
secs = time.perf_counter() - t0
np.save(out, np.sort(np.asarray(s, dtype=np.float64)))
hwm = int(re.search(r"VmHWM:\s+(\d+)", open("/proc/self/status").read()).group(1)) * 1024
print(json.dumps({"seconds": secs, "peak_rss_bytes": hwm, "dim": int(d) if route == "dgemm" else 0}))
"""

SCAN_CHILD = r"""
import json, struct, sys, time
import numpy as np
route, path = sys.argv[1], sys.argv[2]
if route.startswith("torch"): import torch
if route.startswith("scipy"): import scipy.linalg
def tensors(path):
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    n = struct.unpack("<Q", raw[:8].tobytes())[0]
    header = json.loads(raw[8:8 + n].tobytes())
    for name, e in header.items():
        b, c = e["data_offsets"]
        yield np.frombuffer(raw[8 + n + b:8 + n + c], dtype=np.float32).reshape(e["shape"])
t0 = time.perf_counter(); count = 0
for a in tensors(path):
    if route == "numpy_f32": s = np.linalg.svd(a, compute_uv=False)
    elif route == "numpy_gram":
        x = a.astype(np.float64); g = x.T @ x if x.shape[0] >= x.shape[1] else x @ x.T
        s = np.sqrt(np.clip(np.linalg.eigvalsh(g), 0, None))
    elif route == "torch_f32": s = torch.linalg.svdvals(torch.from_numpy(np.array(a)))
    elif route == "scipy_f32": s = scipy.linalg.svdvals(a, check_finite=False)
    count += 1
print(json.dumps({"seconds": time.perf_counter() - t0, "matrices": count}))
"""

PY_ROUTES = ["numpy_f32", "numpy_f64", "numpy_gram", "torch_f32", "torch_f64", "scipy_f32"]
SCAN_ROUTES = ["numpy_f32", "numpy_gram", "torch_f32", "scipy_f32"]


def run_json(cmd, timeout):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout} s"}
    if p.returncode != 0:
        return {"error": p.stderr.strip().splitlines()[-1] if p.stderr.strip() else f"exit {p.returncode}"}
    return [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]


def planted(m, n, rng):
    """float32 m x n with singular values log-spaced from 1 to 1e-4 (Haar factors)."""
    k = min(m, n)
    u, _ = np.linalg.qr(rng.standard_normal((m, k)))
    v, _ = np.linalg.qr(rng.standard_normal((n, k)))
    return ((u * np.logspace(0, -4, k)) @ v.T).astype(np.float32)


def gram_floor(sigma_max, m, n):  # lib/spectra/backend.cpp, with kFloorRelativeAccuracy = 1e-2
    return np.sqrt(np.sqrt(max(m, n)) * np.finfo(np.float64).eps / 2e-2) * sigma_max


def gram32_floor(sigma_max, m, n):  # the same model in float32
    return np.sqrt(np.sqrt(max(m, n)) * np.finfo(np.float32).eps / 2e-2) * sigma_max


def rel_err(got, ref, floor):
    keep = ref >= floor
    return float(np.max(np.abs(got[keep] - ref[keep]) / ref[keep]))


def machine():
    return {"nproc": os.cpu_count(), "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", ""), "affinity": len(os.sched_getaffinity(0)), "load": os.getloadavg(),
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", ""), "numpy": np.__version__}


def one_route(route, path, tmp, bench, timeout):
    out = pathlib.Path(tmp) / f"{route}.npy"
    if route.startswith("muspec_"):
        r = run_json(["timeout", str(timeout), bench, route[7:], "1", str(path)], timeout + 5)
        if isinstance(r, dict):
            return r
        return {"seconds": r[0]["seconds"], "peak_rss_bytes": r[-1]["peak_rss_bytes"], "used": r[0]["used"],
                "sigma": np.asarray(r[0]["sigma"])}
    r = run_json([sys.executable, "-c", CHILD, route, str(path), str(out)], timeout)
    if isinstance(r, dict):
        return r
    r = r[0]
    r["sigma"] = np.load(out)
    return r


def shape_rows(m, n, args, bench, tmp, rng):
    path = pathlib.Path(tmp) / f"m{m}x{n}.npy"
    np.save(path, planted(m, n, rng))
    routes = ["muspec_auto", "muspec_gram", "muspec_gram32"] + (["muspec_svd"] if m * n <= args.muspec_svd_max else []) + PY_ROUTES
    if args.routes:
        routes = ["muspec_auto"] + [r for r in routes[1:] if r in args.routes.split(",")]
    runs = {r: [] for r in routes + ["dgemm"]}
    ratios = {r: [] for r in routes}
    ref = None
    if "numpy_f64" not in routes:  # the accuracy reference, computed once outside the rounds
        res = one_route("numpy_f64", path, tmp, bench, args.child_timeout)
        ref = res.get("sigma")
    rounds = args.rounds if m * n <= 4096 * 4096 else args.big_rounds
    for rnd in range(rounds):
        load = os.getloadavg()[0]
        this = {}
        for r in routes + ["dgemm"]:
            res = one_route(r, path, tmp, bench, args.child_timeout)
            this[r] = res
            runs[r].append(res)
            if r == "numpy_f64" and "sigma" in res and ref is None:
                ref = res["sigma"]
        for r in routes:  # speed of auto relative to each route, within this round
            if "seconds" in this[r] and "seconds" in this["muspec_auto"]:
                ratios[r].append(this[r]["seconds"] / this["muspec_auto"]["seconds"])
        print(json.dumps({"shape": f"{m}x{n}", "round": rnd, "load1": load,
                          **{r: this[r].get("seconds", this[r].get("error")) for r in this}}), flush=True)
    k = min(m, n)
    dgemm_gfs = [2 * r["dim"] ** 3 / r["seconds"] / 1e9 for r in runs["dgemm"] if "seconds" in r]
    floor = gram_floor(ref[-1], m, n) if ref is not None else None
    rows = []
    for r in routes:
        ok = [x for x in runs[r] if "seconds" in x]
        if not ok:
            rows.append({"route": r, "error": runs[r][0].get("error")})
            continue
        secs = [x["seconds"] for x in ok]
        row = {"route": r, "min": min(secs), "median": statistics.median(secs),
               "auto_speedup_median": statistics.median(ratios[r]) if ratios[r] else None,
               "peak_rss_mib": max(x["peak_rss_bytes"] for x in ok) / 2 ** 20,
               "rel_err": (rel_err(ok[0]["sigma"], ref, gram32_floor(ref[-1], m, n) if r == "muspec_gram32" else floor)
                           if ref is not None else None),
               "used": ok[0].get("used", "")}
        if r.startswith("muspec") and dgemm_gfs:
            flops = k * k * max(m, n) + 4 / 3 * k ** 3
            row["roof_ratio"] = flops / min(secs) / 1e9 / max(dgemm_gfs)
        rows.append(row)
    path.unlink()
    return rows, max(dgemm_gfs) if dgemm_gfs else None


def write_safetensors(path, shapes, rng):
    header, offset, blobs = {}, 0, []
    for name, shape in shapes:
        blob = rng.standard_normal(shape, dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    h = json.dumps(header).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


def llama_shapes(count, d):
    per_layer = [("self_attn.q_proj", (d, d)), ("self_attn.k_proj", (d // 4, d)), ("self_attn.v_proj", (d // 4, d)),
                 ("self_attn.o_proj", (d, d)), ("mlp.gate_proj", (11 * d // 4, d)), ("mlp.up_proj", (11 * d // 4, d)),
                 ("mlp.down_proj", (d, 11 * d // 4))]
    return [(f"model.layers.{i // 7}.{per_layer[i % 7][0]}.weight", per_layer[i % 7][1]) for i in range(count)]


def scan_rows(args, muspec, tmp, rng):
    ck = pathlib.Path(tmp) / "ckpt"
    ck.mkdir()
    write_safetensors(ck / "model.safetensors", llama_shapes(args.scan_matrices, args.scan_hidden), rng)
    runs = {r: [] for r in ["muspec"] + SCAN_ROUTES}
    for rnd in range(args.rounds):
        out = pathlib.Path(tmp) / "scan.h5"
        t = time.perf_counter()
        p = subprocess.run(["timeout", str(args.child_timeout), muspec, "scan", str(ck), "-q", "-o", str(out)],
                           capture_output=True, text=True)
        runs["muspec"].append(time.perf_counter() - t if p.returncode == 0 else None)
        out.unlink(missing_ok=True)
        for r in SCAN_ROUTES:
            res = run_json([sys.executable, "-c", SCAN_CHILD, r, str(ck / "model.safetensors")], args.child_timeout)
            runs[r].append(None if isinstance(res, dict) else res[0]["seconds"])
        print(json.dumps({"scan_round": rnd, "load1": os.getloadavg()[0], **{r: v[-1] for r, v in runs.items()}}), flush=True)
    return runs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--shapes", default="512,1024,2048,4096,4096x11008")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--big-rounds", type=int, default=1, help="rounds for shapes larger than 4096x4096")
    ap.add_argument("--muspec-svd-max", type=int, default=2048 * 2048, help="largest m*n for muspec svd (slow)")
    ap.add_argument("--scan-matrices", type=int, default=24, help="0 skips the scan")
    ap.add_argument("--scan-hidden", type=int, default=1024)
    ap.add_argument("--child-timeout", type=int, default=600)
    ap.add_argument("--blas-threads", type=int, default=0,
                    help="OPENBLAS_NUM_THREADS (and OMP_NUM_THREADS) for every route; 0 = each library's default")
    ap.add_argument("--routes", default="", help="comma-separated subset of the routes (muspec_auto always runs)")
    ap.add_argument("--quick", action="store_true", help="512,1024 and a 24-matrix scan at hidden 512 (< 5 min)")
    args = ap.parse_args()
    if args.quick:
        args.shapes, args.scan_hidden = "512,1024", 512
    if args.blas_threads:  # inherited by every child process, muspec included
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
            os.environ[var] = str(args.blas_threads)
    bench = str(pathlib.Path(args.build) / "tools/bench/muspec_bench_spectra")
    muspec = str(pathlib.Path(args.build) / "tools/muspec")
    shapes = [tuple(int(v) for v in (s.split("x") * 2)[:2]) for s in args.shapes.split(",") if s]
    rng = np.random.default_rng(0)
    print(json.dumps({"machine_start": machine()}), flush=True)
    table = ["| shape | route | min (s) | median (s) | auto speed-up (median of rounds) | max rel. err above floor | "
             "peak RSS | ratio to dgemm roof |", "|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory(prefix="muspec-compare-") as tmp:
        for m, n in shapes:
            rows, roof = shape_rows(m, n, args, bench, tmp, rng)
            for r in rows:
                print(json.dumps({"shape": f"{m}x{n}", "dgemm_gflops": roof, **r}), flush=True)
                if "error" in r:
                    table.append(f"| {m}x{n} | {r['route']} | {r['error']} | | | | | |")
                    continue
                name = r["route"] + (f" ({r['used']})" if r["used"] else "")
                roof_txt = f"{r['roof_ratio']:.2f}" if "roof_ratio" in r else ""
                sp = f"{r['auto_speedup_median']:.2f}x" if r["auto_speedup_median"] else ""
                table.append(f"| {m}x{n} | {name} | {r['min']:.3f} | {r['median']:.3f} | {sp} | {r['rel_err']:.1e} | "
                             f"{r['peak_rss_mib']:.0f} MiB | {roof_txt} |")
        if args.scan_matrices:
            runs = scan_rows(args, muspec, tmp, rng)
            table += ["", f"Scan of {args.scan_matrices} Llama-shaped float32 matrices (hidden {args.scan_hidden}):", "",
                      "| route | min (s) | median (s) | matrices/s (min) |", "|---|---|---|---|"]
            for r, v in runs.items():
                ok = [x for x in v if x is not None]
                if ok:
                    table.append(f"| {r} | {min(ok):.2f} | {statistics.median(ok):.2f} | {args.scan_matrices / min(ok):.1f} |")
                else:
                    table.append(f"| {r} | failed | | |")
    print(json.dumps({"machine_end": machine()}), flush=True)
    print("\n".join(table))


if __name__ == "__main__":
    main()
