#!/usr/bin/python3
"""Measures what muspec's Python module and SpectralMonitor cost (docs/python.md):

  1. SpectralMonitor on the sample models' sizes (tools/python/train_tiny_gpt.py, d16 ... d80):
     time per observation (every momentum buffer) against the time of one training step;
  2. one 4096 x 4096 float32 matrix on the CPU: time of muspec.singular_values (method auto)
     and the process's peak resident memory over the input's size (ru_maxrss before/after).

    OMP_NUM_THREADS=1 PYTHONPATH=tools/python:build/python /usr/bin/python3 tools/python/measure_monitor.py [--big N]
"""
import argparse
import os
import resource
import sys
import tempfile
import time
import tracemalloc

import numpy as np
import pandas  # noqa: F401 (imported up front: muspec.summarize parses its row with pandas)
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import muspec  # noqa: E402
import train_tiny_gpt as tiny  # noqa: E402
from muspec_torch import SpectralMonitor  # noqa: E402


def monitor_cost(h, layers, steps=40, every=10):
    torch.manual_seed(0)
    model = tiny.LlamaForCausalLM(h, layers, h // tiny.HEAD_DIM, tiny.intermediate_size(h))
    opt, _, _, _ = tiny.build_optimizer(model)
    data = torch.frombuffer(bytearray(tiny.load_corpus()[0][:200000]), dtype=torch.uint8)
    gen = torch.Generator().manual_seed(1)
    with tempfile.TemporaryDirectory() as d:
        mon = SpectralMonitor(opt, every=every, path=os.path.join(d, "s.h5"), model=model, run=f"d{h}")
        for _ in range(steps):
            x, y = tiny.get_batch(data, gen)
            loss = torch.nn.functional.cross_entropy(model(x).view(-1, tiny.VOCAB), y.view(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            mon.step()
        mon.close()
    return mon.cost_report()


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def big_matrix(n):
    x = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    before = peak_rss_mib()
    tracemalloc.start()
    t0 = time.perf_counter()
    r = muspec.summarize(x, method="auto", sigma=True)
    seconds = time.perf_counter() - t0
    python_peak = tracemalloc.get_traced_memory()[1] / 2 ** 20
    tracemalloc.stop()
    extra = peak_rss_mib() - before
    return seconds, r["method"], extra, x.nbytes / 2 ** 20, python_peak


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--big", type=int, default=4096, help="side of the large matrix (0: skip)")
    ap.add_argument("--no-models", action="store_true", help="only the large matrix")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, muspec {muspec.__version__}, {os.cpu_count()} CPUs, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')}")
    models = [] if args.no_models else tiny.SIZES
    print("| model | matrices per observation | ms per observation | ms per training step | overhead at every=100 |")
    print("|---|---|---|---|---|")
    for run, h, layers in models:
        r = monitor_cost(h, layers)
        per_obs, per_step = r["seconds_per_observation"], r["seconds_per_step"]
        print(f"| {run} | {r['matrices'] // r['observations']} | {per_obs * 1e3:.2f} | {per_step * 1e3:.2f} | "
              f"{100 * per_obs / (100 * per_step):.3f} % |")
    if args.big:
        s, method, extra, size, python_peak = big_matrix(args.big)
        print(f"\n{args.big} x {args.big} float32 ({size:.0f} MiB): summarize {s:.1f} s (method {method}); "
              f"Python-side allocations (tracemalloc peak) {python_peak:.2f} MiB; peak RSS grew by {extra:.0f} MiB "
              f"({extra / size:.1f}x the input: the library's float64 working set)")


if __name__ == "__main__":
    main()
