#!/usr/bin/python3
"""Does an ns_config hold in bf16 at matrix level? For each checkpoint of a run, every Muon
momentum buffer is run through the NS setting the config assigns to it (muspec_torch's
newton_schulz in bf16: bf16 matrix products, float32 scalars, as Muon runs on a GPU), and the gain
u_i^T X v_i of every direction whose normalized singular value s_i = sigma_i / ||G||_F is at or
above the entry's lower bound must lie in the config's promised band (provenance.precision_band).

The oracle is independent of muspec's C++: torch's bf16 matmul and numpy's float64 SVD.

    PYTHONPATH=tools/python /usr/bin/python3 docs/case-study/check_bf16.py \
        --config docs/case-study/ns_config.json --run /work/case-study-runs/h128-s0 --steps 500,1000,1500

Prints one line per checkpoint (parameters checked, parameters with a direction outside the band,
lowest and highest gain, share of directions below their lower bound) and exits 1 on a failure.
"""
import argparse
import json
import pathlib
import sys

import numpy as np
import torch

import muspec_torch

BF16_FLOOR = 3e-3  # docs/ns-config.md "Precision": below it rounding decides a direction's fate


def momentum_by_name(run_dir, step):
    order = json.loads((run_dir / "muspec-run.json").read_text())["param_order"]
    state = torch.load(run_dir / ("checkpoint-%d" % step) / "optimizer.pt", map_location="cpu")["state"]
    return [(order[i], s["momentum_buffer"].float()) for i, s in sorted(state.items()) if "momentum_buffer" in s]


def entry_of(doc, assignment):
    """The config entry (dict) an assignment came from: exact parameter or pattern[i]."""
    if assignment.source == "exact":
        return doc["parameters"][assignment.canonical]
    if assignment.source.startswith("pattern["):
        return doc["patterns"][int(assignment.source[8:-1])]
    raise SystemExit("%s: resolved to %s; the config does not cover it" % (assignment.canonical, assignment.source))


def direction_gains(G, schedule):
    X = muspec_torch.newton_schulz(G, schedule, "bfloat16").double().numpy()
    Gd = G.double().numpy()
    U, S, Vt = np.linalg.svd(Gd, full_matrices=False)
    return S / np.linalg.norm(Gd), np.einsum("ij,ik,kj->j", U, X, Vt.T)


def check_checkpoint(doc, band, run_dir, step):
    named = momentum_by_name(run_dir, step)
    mapping = muspec_torch.map_parameters(named, doc, warn_unused_patterns=False)
    bad, lo, hi, below, total = [], np.inf, -np.inf, 0, 0
    for a in mapping.assignments:
        s, gains = direction_gains(a.param, a.schedule)
        entry = entry_of(doc, a)
        bound = entry["lower_bound"]
        g = gains[s >= bound]
        below += int((s < bound).sum())
        total += s.size
        if g.size:
            lo, hi = min(lo, g.min()), max(hi, g.max())
            if g.min() < band[0] or g.max() > band[1]:
                bad.append((a.canonical, float(g.min()), float(g.max()), bound, entry["requirement_met"]))
    return len(mapping.assignments), bad, lo, hi, below / max(total, 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--run", required=True, help="run directory (muspec-run.json, checkpoint-N/)")
    ap.add_argument("--steps", required=True, help="checkpoint steps, e.g. 500,1000,1500")
    args = ap.parse_args()
    torch.set_num_threads(1)
    doc = json.loads(pathlib.Path(args.config).read_text())
    band = doc["provenance"]["precision_band"]
    failed = False
    for step in [int(v) for v in args.steps.split(",")]:
        n, bad, lo, hi, below = check_checkpoint(doc, band, pathlib.Path(args.run), step)
        failed = failed or bool(bad)
        print("%s step %d: %d parameters, %d outside [%.4g, %.4g]; gains above the bound in [%.4f, %.4f]; "
              "%.1f %% of directions below their bound" % (pathlib.Path(args.run).name, step, n, len(bad),
                                                          band[0], band[1], lo, hi, 100 * below))
        for name, gmin, gmax, bound, promised in bad:
            print("  %s: gains [%.4f, %.4f], lower bound %.3g%s; %s" % (
                name, gmin, gmax, bound, " (under the bf16 floor 3e-3)" if bound < BF16_FLOOR else "",
                "promised (requirement_met true)" if promised else "not promised (requirement_met false)"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
