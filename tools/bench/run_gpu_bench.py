#!/usr/bin/env python3
"""GPU benchmark: muspec's CUDA backend vs torch.linalg.svdvals (float32) on the same GPU, in the
same run, on the same matrices. Needs a muspec build with CUDA (build dir with tools/muspec and
tools/bench/muspec_bench_spectra) and a Python with torch (CUDA), numpy and safetensors.

    python3 tools/bench/run_gpu_bench.py --build build-cuda [--shapes 1024,2048,...] [--llama-layers 32]

Parts:
  1. per shape: a float32 matrix with planted singular values (log-spaced, sigma_max/sigma_min = 1e4,
     Haar factors from torch QR), stored as float32 .npy: muspec gram / svd (float64, stored bytes
     decoded on the GPU) / torch svdvals (float32) / muspec's CPU backend (gram, float64);
     accuracy = largest relative difference from muspec's GPU float64 svd, and GPU vs CPU backend,
     above the floor.
  1b. muspec_probe_eigensolvers (--probe): Xsyevd alone, serial, on concurrent streams, and
     XsyevBatched on the same float64 Gram matrices.
  2. a Llama-3-8B-shaped checkpoint (32 layers of q, o 4096^2; k, v 1024x4096; gate, up 14336x4096;
     down 4096x14336; bf16 safetensors on disk): `muspec scan --device cuda` end to end vs a loop
     of torch.linalg.svdvals over the same tensors read with safetensors (float32 on the GPU).
     The torch loop runs on --torch-layers layers and is scaled to the whole set (every layer has
     the same shapes), which the table says.
Prints Markdown tables last; writes bench_gpu.json into --out.
"""
import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import time

import numpy as np
import torch


def log(*a):
    print(*a, flush=True)


def peak_copy_bandwidth():
    """Device-to-device copy of 2 GiB, bytes read + written per second (the practical HBM peak)."""
    x = torch.empty(1 << 28, dtype=torch.float64, device="cuda")
    y = torch.empty_like(x)
    for _ in range(3):
        y.copy_(x)
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(10):
        y.copy_(x)
    torch.cuda.synchronize()
    return 2 * x.numel() * 8 * 10 / (time.perf_counter() - t)


def planted(m, n, seed):
    g = torch.Generator(device="cuda").manual_seed(seed)
    k = min(m, n)
    u, _ = torch.linalg.qr(torch.randn(m, k, device="cuda", generator=g, dtype=torch.float32))
    v, _ = torch.linalg.qr(torch.randn(n, k, device="cuda", generator=g, dtype=torch.float32))
    s = torch.logspace(0, -4, k, device="cuda", dtype=torch.float32)
    a = (u * s) @ v.T
    del u, v
    return a


def run_muspec_bench(build, device, method, repeats, path, timeout):
    exe = os.path.join(build, "tools/bench/muspec_bench_spectra")
    out = subprocess.run([exe, "--device", device, method, str(repeats), path], capture_output=True, text=True,
                         timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"muspec_bench_spectra {method} failed: {out.stderr[-2000:]}")
    lines = [json.loads(l) for l in out.stdout.splitlines() if l.strip()]
    return lines[0]


def time_torch_svdvals(a, repeats):
    best = 1e300
    s = None
    for _ in range(repeats):
        torch.cuda.synchronize()
        t = time.perf_counter()
        s = torch.linalg.svdvals(a)
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best, np.sort(s.double().cpu().numpy())


def rel_err_above(got, ref, floor):
    got, ref = np.sort(np.asarray(got)), np.sort(np.asarray(ref))
    keep = ref >= floor
    return float(np.max(np.abs(got[keep] - ref[keep]) / ref[keep])) if keep.any() else float("nan")


def shape_part(args, work, peak_bw):
    rows = []
    torch.linalg.svdvals(torch.randn(256, 256, device="cuda"))  # load cuSOLVER, warm up
    for spec in args.shapes.split(","):
        m, n = (int(v) for v in spec.split("x")) if "x" in spec else (int(spec), int(spec))
        a = planted(m, n, seed=m * 7 + n)
        path = str(work / f"m{m}x{n}.npy")
        np.save(path, a.cpu().numpy())
        big = m * n >= 8192 * 8192
        reps = 1 if big else args.repeats
        log(f"[shape {m}x{n}] muspec gram/svd, torch svdvals ({reps} repeats)")
        gram = run_muspec_bench(args.build, "cuda", "gram", reps, path, 900)
        svd = run_muspec_bench(args.build, "cuda", "svd", 1 if big else reps, path, 900)
        cpu = run_muspec_bench(args.build, "cpu", "gram", 1, path, 900)  # the CPU backend, same file
        ref = svd["sigma"]
        t_torch, s_torch = time_torch_svdvals(a, reps)
        del a
        torch.cuda.empty_cache()
        nmin = min(m, n)
        tri_bytes = 8 * nmin ** 3 / 3  # one-stage tridiagonalization reads ~n^3/3 doubles (rate over the whole call)
        floor = max(gram["floor"], cpu["floor"])
        rows.append({
            "shape": f"{m}x{n}", "muspec_gram_s": gram["seconds"], "host_decode_s": gram["host_decode_seconds"],
            "muspec_svd_s": svd["seconds"], "torch_svdvals_s": t_torch, "cpu_gram_s": cpu["seconds"],
            "speedup_gram_vs_torch": t_torch / gram["seconds"],
            "gram_floor": gram["floor"],
            "gram_rel_err": rel_err_above(gram["sigma"], ref, gram["floor"]),
            "gpu_vs_cpu_gram_rel_diff": rel_err_above(gram["sigma"], cpu["sigma"], floor),
            "gpu_svd_vs_cpu_gram_rel_diff": rel_err_above(svd["sigma"], cpu["sigma"], floor),
            "torch_rel_err": rel_err_above(s_torch, ref, gram["floor"]),
            "gram_tridiag_GBps_incl_upload": tri_bytes / max(gram["seconds"], 1e-9) / 1e9,
            "peak_GBps": peak_bw / 1e9,
        })
        log(json.dumps(rows[-1]))
    return rows


LLAMA8B = [("self_attn.q_proj", (4096, 4096)), ("self_attn.k_proj", (1024, 4096)), ("self_attn.v_proj", (1024, 4096)),
           ("self_attn.o_proj", (4096, 4096)), ("mlp.gate_proj", (14336, 4096)), ("mlp.up_proj", (14336, 4096)),
           ("mlp.down_proj", (4096, 14336))]


def write_llama(work, layers):
    from safetensors.torch import save_file
    d = work / "llama8b"
    d.mkdir(exist_ok=True)
    total = 0
    g = torch.Generator(device="cuda").manual_seed(1)
    for lo in range(0, layers, 4):
        tensors = {}
        for i in range(lo, min(layers, lo + 4)):
            for name, shape in LLAMA8B:
                # Gaussian weights with a per-row scale spread, so the spectra are not all alike.
                w = torch.randn(*shape, device="cuda", generator=g) * (0.02 * (1 + torch.rand(shape[0], 1, device="cuda", generator=g)))
                tensors[f"model.layers.{i}.{name}.weight"] = w.to(torch.bfloat16).cpu()
        save_file(tensors, str(d / f"model-{lo // 4:05d}.safetensors"))
        total += sum(t.numel() * 2 for t in tensors.values())
    (d / "config.json").write_text(json.dumps({"model_type": "llama", "num_hidden_layers": layers,
                                               "hidden_size": 4096, "intermediate_size": 14336}))
    return d, total


def torch_loop(d, layers):
    from safetensors import safe_open
    names = [f"model.layers.{i}.{n}.weight" for i in range(layers) for n, _ in LLAMA8B]
    sig = {}
    torch.cuda.synchronize()
    t = time.perf_counter()
    for f in sorted(d.glob("*.safetensors")):
        with safe_open(str(f), framework="pt", device="cpu") as h:
            for k in h.keys():
                if k in names:
                    a = h.get_tensor(k).to("cuda").float()
                    sig[k] = torch.linalg.svdvals(a).double().cpu().numpy()
    torch.cuda.synchronize()
    return time.perf_counter() - t, sig


def llama_part(args, work):
    d, nbytes = write_llama(work, args.llama_layers)
    log(f"[8B set] wrote {nbytes / 2**30:.1f} GiB of bf16 in {args.llama_layers} layers")
    res = {"layers": args.llama_layers, "matrices": 7 * args.llama_layers, "checkpoint_GiB": nbytes / 2**30}
    for solver, streams in [(e, s) for e in args.eigensolvers.split(",") for s in args.streams.split(",")]:
        key = f"muspec_{solver}_s{streams}"
        h5 = work / f"llama_{solver}_s{streams}.h5"
        util = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-lms", "200"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        p = subprocess.run([os.path.join(args.build, "tools/muspec"), "scan", str(d), "--device", "cuda", "--gpu-streams",
                            streams, "-q", "-o", str(h5)], capture_output=True, text=True, timeout=1200,
                           env=dict(os.environ, MUSPEC_GPU_EIGENSOLVER=solver))
        dt = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        util.terminate()
        samples = [int(v) for v in util.communicate()[0].split() if v.strip().isdigit()]
        if p.returncode != 0:
            raise RuntimeError(p.stderr[-3000:])
        res[f"{key}_s"] = dt
        res[f"{key}_host_cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        res[f"{key}_gpu_util_mean"] = sum(samples) / len(samples) if samples else None
        log(f"[8B set] muspec scan {solver} --gpu-streams {streams}: {dt:.1f} s, host CPU "
            f"{res[f'{key}_host_cpu_s']:.1f} s, mean GPU utilization {res[f'{key}_gpu_util_mean']}")
    t_torch, sig = torch_loop(d, args.torch_layers)
    res["torch_layers"] = args.torch_layers
    res["torch_measured_s"] = t_torch
    res["torch_scaled_s"] = t_torch * args.llama_layers / args.torch_layers
    import h5py
    for h5 in sorted(work.glob("llama_*_s*.h5")):  # every scan above, against torch above the floor
        worst, devices = 0.0, set()
        with h5py.File(str(h5), "r") as f:
            for key in f["spectra"]:
                ds = f["spectra"][key]
                name = ds.attrs["tensor"]
                name = name.decode() if isinstance(name, bytes) else name
                dev = ds.attrs.get("device", b"?")
                devices.add(dev.decode() if isinstance(dev, bytes) else str(dev))
                if name in sig:
                    worst = max(worst, rel_err_above(ds[()], sig[name], float(ds.attrs["floor"])))
        res[f"{h5.stem}_max_rel_diff_vs_torch_above_floor"] = worst
        res[f"{h5.stem}_devices"] = sorted(devices)
    best = min(res[f"muspec_{e}_s{s}_s"] for e in args.eigensolvers.split(",") for s in args.streams.split(","))
    res["speedup"] = res["torch_scaled_s"] / best
    log(json.dumps(res))
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-cuda")
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--work", default="/tmp/muspec-gpu-bench")
    ap.add_argument("--shapes", default="1024,2048,4096,8192,4096x14336,8192x28672")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--llama-layers", type=int, default=32)
    ap.add_argument("--torch-layers", type=int, default=2)
    ap.add_argument("--streams", default="8")
    ap.add_argument("--eigensolvers", default="syevd", help="MUSPEC_GPU_EIGENSOLVER values to scan with: syevd,sytrd")
    ap.add_argument("--skip-shapes", action="store_true")
    ap.add_argument("--skip-llama", action="store_true")
    ap.add_argument("--probe", default="1024:32 4096:5 8192:2",
                    help="N:BATCH specs for muspec_probe_eigensolvers ('' to skip)")
    args = ap.parse_args()
    work = pathlib.Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    for old in work.glob("llama_*.h5"):
        old.unlink()
    info = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}
    peak = peak_copy_bandwidth()
    info["copy_GBps"] = peak / 1e9
    log(json.dumps(info))
    result = {"info": info}
    if not args.skip_shapes:
        result["shapes"] = shape_part(args, work, peak)
    probe = pathlib.Path(args.build, "tools/bench/muspec_probe_eigensolvers")
    if args.probe and probe.exists():
        log(f"[eigensolvers] {args.probe}")
        p = subprocess.run([str(probe)] + args.probe.split(), capture_output=True, text=True, timeout=600)
        result["eigensolvers"] = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
        for r in result["eigensolvers"]:
            log(json.dumps(r))
        if p.returncode != 0:
            log(p.stderr[-2000:])
    if not args.skip_llama:
        result["llama8b"] = llama_part(args, work)
    pathlib.Path(args.out, "bench_gpu.json").write_text(json.dumps(result, indent=1))
    log(f"\n{info['gpu']}, torch {info['torch']}, d2d copy {peak / 1e9:.0f} GB/s")
    if "shapes" in result:
        log("| shape | muspec gram (s) | muspec svd f64 (s) | torch svdvals f32 (s) | gram speed-up | CPU gram (s) | "
            "GPU vs CPU gram | GPU svd vs CPU gram | gram rel. err | torch rel. err | host decode (s) |")
        log("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in result["shapes"]:
            log(f"| {r['shape']} | {r['muspec_gram_s']:.3f} | {r['muspec_svd_s']:.3f} | {r['torch_svdvals_s']:.3f} | "
                f"{r['speedup_gram_vs_torch']:.1f}x | {r['cpu_gram_s']:.2f} | {r['gpu_vs_cpu_gram_rel_diff']:.1e} | "
                f"{r['gpu_svd_vs_cpu_gram_rel_diff']:.1e} | {r['gram_rel_err']:.1e} | {r['torch_rel_err']:.1e} | "
                f"{r['host_decode_s']:.3f} |")
    if "llama8b" in result:
        log(json.dumps(result["llama8b"]))


if __name__ == "__main__":
    main()
