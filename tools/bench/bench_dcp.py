#!/usr/bin/python3
"""Sharded-checkpoint benchmark (issue 15): `muspec scan` of a PyTorch Distributed Checkpoint
spread over 8 `.distcp` files against the same matrices in one safetensors file.

    /usr/bin/python3 tools/bench/bench_dcp.py --muspec build/tools/muspec [--out /tmp/muspec-bench-dcp]
        [--matrices 256] [--rows 4096] [--cols 256] [--repeats 3]

Writes (once; reused when present) OUT/dcp/step-1/ (8 ranks, every matrix row-sharded over the
8 files, one torch.save archive per chunk, as DCP's FileSystemWriter lays them out; see
tests/fixtures/make_dcp_fixtures.py) and OUT/safetensors/step-1/model.safetensors. The default
is 256 float32 matrices of 4096 x 256 = 1 GiB: tall-skinny so that the SVD (a 256 x 256 Gram
matrix) costs little and the comparison shows the reading and assembly. Each scan runs with
`--kind weights`; the two layouts alternate, the first round warms the page cache and is not
counted. Prints one JSON line per run and a summary: the best wall time of each layout, their
ratio and the peak RSS of each scan process (ru_maxrss).
"""
import argparse
import importlib.util
import json
import pathlib
import os
import subprocess
import sys
import time


FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "make_dcp_fixtures.py"


def fixture_module():
    spec = importlib.util.spec_from_file_location("make_dcp_fixtures", FIXTURES)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def write_checkpoints(out, n, rows, cols):
    dcp_dir, st_dir = out / "dcp" / "step-1", out / "safetensors" / "step-1"
    if (dcp_dir / ".metadata").exists() and (st_dir / "model.safetensors").exists():
        return dcp_dir, st_dir
    import torch  # only to write the checkpoints: the scans run from a small parent (a forked child's ru_maxrss counts the parent's pages)

    fx = fixture_module()
    ck = fx.Checkpoint(fx.classes_v25(), 8)
    tensors = {}
    gen = torch.Generator().manual_seed(1)
    for i in range(n):
        name = f"layers.{i}.attention.wq.weight"
        t = torch.randn(rows, cols, generator=gen)
        tensors[name] = t
        ck.add(name, t, fx.row_chunks([rows, cols], 8))
    ck.write(dcp_dir, storage_meta=False)
    st_dir.mkdir(parents=True, exist_ok=True)
    (st_dir / "model.safetensors").write_bytes(fx.write_safetensors(None, tensors))
    return dcp_dir, st_dir


def scan(muspec, path):
    """Wall seconds and peak RSS (MiB) of one `muspec scan` (os.wait4: that child's own rusage)."""
    t0 = time.monotonic()
    # A real file, not /dev/null: muspec commits outputs by rename and refuses device paths.
    out = pathlib.Path(path).parent / "bench_scan.json"
    p = subprocess.Popen([muspec, "scan", str(path), "--kind", "weights", "-q", "--json", str(out)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"muspec scan {path} failed ({os.waitstatus_to_exitcode(status)})")
    return wall, usage.ru_maxrss / 1024.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--muspec", required=True)
    ap.add_argument("--out", default="/tmp/muspec-bench-dcp")
    ap.add_argument("--matrices", type=int, default=256)
    ap.add_argument("--rows", type=int, default=4096)
    ap.add_argument("--cols", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    dcp_dir, st_dir = write_checkpoints(pathlib.Path(a.out), a.matrices, a.rows, a.cols)
    best = {"dcp": float("inf"), "safetensors": float("inf")}
    rss = {"dcp": 0.0, "safetensors": 0.0}
    for rnd in range(a.repeats + 1):
        for layout, path in (("safetensors", st_dir), ("dcp", dcp_dir)):
            wall, peak = scan(a.muspec, path)
            print(json.dumps({"layout": layout, "round": rnd, "wall_s": round(wall, 3), "peak_rss_mib": round(peak, 1)}), flush=True)
            if rnd > 0:
                best[layout] = min(best[layout], wall)
            rss[layout] = max(rss[layout], peak)
    matrix_mib = a.rows * a.cols * 4 / 2**20
    print(json.dumps({"matrices": a.matrices, "matrix_mib": matrix_mib, "total_gib": a.matrices * matrix_mib / 1024,
                      "best_wall_s": best, "ratio_dcp_over_safetensors": round(best["dcp"] / best["safetensors"], 3),
                      "peak_rss_mib": rss}))


if __name__ == "__main__":
    main()
