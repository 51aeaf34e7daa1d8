#!/usr/bin/python3
"""The tables of docs/case-study/README.md, from the files run_analysis.sh writes.

    /usr/bin/python3 docs/case-study/tables.py --dir docs/case-study --runs /work/case-study-runs

Reads summary.csv.gz (per matrix and checkpoint), laws.json, laws_last_blocks.json,
configs/ns_config_*.json, ns_config_predicted_h*.json and, for the loss table, the runs'
trainer_state.json. Prints markdown. Needs only the standard library.
"""
import argparse
import csv
import glob
import gzip
import json
import math
import os
import re
import statistics
from collections import defaultdict

SETTLED_FROM = 750   # the checkpoints 750, 1000, 1500: the "settled" reference of the burn-in table
OPS = ["q", "k", "v", "o", "gate", "up", "down"]


def width_of(run):
    return int(re.match(r"h(\d+)-s\d+", run).group(1))


def read_summary(path):
    """(run, parameter) -> {step: row}."""
    series = defaultdict(dict)
    with gzip.open(path, "rt") as f:
        for row in csv.DictReader(f):
            if row["muon"] == "true":
                series[(row["run"], row["parameter"])][int(row["step"])] = row
    return series


def fmt(x, digits=3):
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else "%.*g" % (digits, x)


def runs_table(series, runs_dir):
    print("| run | width | non-embedding params | eval loss @1500 | train loss @1500 |")
    print("|---|---|---|---|---|")
    runs = sorted({r for r, _ in series}, key=lambda r: (width_of(r), r))
    for run in runs:
        params = next(int(rows[max(rows)]["model_params"]) for (r, _), rows in series.items() if r == run)
        st = json.load(open(os.path.join(runs_dir, run, "checkpoint-1500", "trainer_state.json")))
        ev = [e["eval_loss"] for e in st["log_history"] if "eval_loss" in e][-1]
        tr = [e["loss"] for e in st["log_history"] if "loss" in e][-1]
        print("| %s | %d | %s | %.3f | %.3f |" % (run, width_of(run), f"{params:,}", ev, tr))


def burn_in_table(series, level):
    """Median over all Muon matrices of |log10(q_step / q_settled)| and the share within ±10 %."""
    col = "q%s_rel_frob" % level
    by_step = defaultdict(list)
    for rows in series.values():
        ref = statistics.median(float(r[col]) for s, r in rows.items() if s >= SETTLED_FROM)
        for s, r in rows.items():
            by_step[s].append(float(r[col]) / ref)
    steps = sorted(by_step)
    print("| step | " + " | ".join(str(s) for s in steps) + " |")
    print("|---|" + "---|" * len(steps))
    print("| median q/q_settled (q = %s) | " % level
          + " | ".join("%.2f" % statistics.median(by_step[s]) for s in steps) + " |")
    print("| within ±10 % of settled | " + " | ".join(
        "%d %%" % round(100 * sum(abs(v - 1) <= 0.1 for v in by_step[s]) / len(by_step[s])) for s in steps) + " |")


def unsettled_table(stderr_path):
    """Series that never settled (fit --list-unsettled), per op type and quantile level."""
    count = defaultdict(int)
    pattern = re.compile(r"unsettled: run '([^']+)', \S+\.(\w+)_proj\.weight, q=([0-9.]+)")
    for line in open(stderr_path):
        m = pattern.search(line)
        if m:
            count[(m.group(2), m.group(3))] += 1
    levels = sorted({lv for _, lv in count})
    print("| level | " + " | ".join(OPS) + " |")
    print("|---|" + "---|" * len(OPS))
    for lv in levels:
        print("| %s | " % lv + " | ".join(str(count[(op, lv)]) for op in OPS) + " |")


def settled_table(series, level):
    """Median over matrices and seeds of the settled q (median over steps >= SETTLED_FROM)."""
    col = "q%s_rel_frob" % level
    cell = defaultdict(list)
    for (run, _), rows in series.items():
        op = rows[max(rows)]["op_type"]
        cell[(width_of(run), op)].append(statistics.median(float(r[col]) for s, r in rows.items() if s >= SETTLED_FROM))
    widths = sorted({w for w, _ in cell})
    print("| width | " + " | ".join(OPS) + " |")
    print("|---|" + "---|" * len(OPS))
    for w in widths:
        print("| %d | " % w + " | ".join(fmt(statistics.median(cell[(w, op)])) for op in OPS) + " |")


def laws_table(laws_path, level):
    laws = [l for l in json.load(open(laws_path))["laws"] if abs(l["quantile"] - level) < 1e-9]
    print("| group | runs | β [95 % t-CI] | β_null | β − β_null [95 % CI] | differs | leave-largest-out error | in PI |")
    print("|---|---|---|---|---|---|---|---|")
    for l in laws:
        if l["status"] != "ok":
            print("| %s | – | refused: %s | | | | | |" % (l["group"]["name"], l["reason"]))
            continue
        n, llo = l.get("null", {}), l.get("leave_largest_out", {})
        ci, dci = l["beta_ci95"], n.get("beta_minus_null_ci95", [float("nan")] * 2)
        print("| %s | %d | %.2f [%.2f, %.2f] | %.2f | %+.2f [%+.2f, %+.2f] | %s | %s | %s |" % (
            l["group"]["name"], l["num_runs"], l["beta"], ci[0], ci[1], n.get("beta_null", float("nan")),
            n.get("beta_minus_null", float("nan")), dci[0], dci[1], "yes" if n.get("differs") else "no",
            "%+.0f %%" % (100 * llo["relative_error"]) if llo.get("done") else "–",
            ("yes" if llo.get("within_interval") else "no") if llo.get("done") else "–"))


def laws_summary(laws_path):
    laws = [l for l in json.load(open(laws_path))["laws"] if l["status"] == "ok"]
    for level in sorted({l["quantile"] for l in laws}):
        at = [l for l in laws if l["quantile"] == level]
        steeper = sum(1 for l in at if l["null"].get("differs") and l["null"]["beta_minus_null"] < 0)
        shallower = sum(1 for l in at if l["null"].get("differs") and l["null"]["beta_minus_null"] > 0)
        errs = [abs(l["leave_largest_out"]["relative_error"]) for l in at if l["leave_largest_out"].get("done")]
        inside = sum(1 for l in at if l["leave_largest_out"].get("within_interval"))
        print("- q = %s: %d laws; %d steeper than the null, %d shallower; leave-largest-out |error| median "
              "%.0f %%, max %.0f %%; %d of %d inside their 95 %% prediction interval; median β %.2f, "
              "median β_null %.2f" % (level, len(at), steeper, shallower, 100 * statistics.median(errs),
                                     100 * max(errs), inside, len(errs),
                                     statistics.median(l["beta"] for l in at),
                                     statistics.median(l["null"]["beta_null"] for l in at)))


def config_table(dir_):
    print("| run | NS FLOPs / Keller×5 | steps (min–max) | params with > 5 steps | ≤ 4 steps | fragile | "
          "steps added by --verify | ℓ < 3e-3 (bf16 floor) | requirement not met |")
    print("|---|---|---|---|---|---|---|---|---|")
    for path in sorted(glob.glob(os.path.join(dir_, "configs", "ns_config_*.json")),
                       key=lambda p: (width_of(os.path.basename(p)[10:-5]), p)):
        c = json.load(open(path))
        ps = list(c["parameters"].values())
        steps = [p["steps"] for p in ps]
        print("| %s | %.3f | %d–%d | %d | %d | %d | %d | %d | %d |" % (
            os.path.basename(path)[10:-5], c["totals"]["ratio"], min(steps), max(steps),
            sum(s > 5 for s in steps), sum(s <= 4 for s in steps),
            sum(1 for p in ps if p.get("stability", {}).get("fragile")),
            sum(p.get("verified", {}).get("added_steps", 0) for p in ps),
            sum(p["lower_bound"] < 3e-3 for p in ps), sum(not p["requirement_met"] for p in ps)))


def steps_by_op(dir_):
    """Mean recommended steps per op type, early (blocks 0-1) vs late (4-5), over all runs."""
    acc = defaultdict(list)
    for path in glob.glob(os.path.join(dir_, "configs", "ns_config_*.json")):
        for p in json.load(open(path))["parameters"].values():
            acc[(p["op_type"], "early" if p["layer"] <= 1 else "late" if p["layer"] >= 4 else "middle")].append(p["steps"])
    print("| blocks | " + " | ".join(OPS) + " |")
    print("|---|" + "---|" * len(OPS))
    for part in ("early", "middle", "late"):
        print("| %s | " % part + " | ".join("%.1f" % statistics.mean(acc[(op, part)]) for op in OPS) + " |")


def predicted_vs_measured(dir_):
    for path in glob.glob(os.path.join(dir_, "ns_config_predicted_h*.json")):
        pred = json.load(open(path))
        run = "h%s-s0" % re.search(r"_h(\d+)\.json", path).group(1)
        meas = json.load(open(os.path.join(dir_, "configs", "ns_config_%s.json" % run)))
        pat_steps = defaultdict(dict)
        for p in pred["patterns"]:
            for layer in range(p["layers"][0], p["layers"][1] + 1):
                pat_steps[p["op_type"]][layer] = p["steps"]
        fewer = more = same = 0
        for p in meas["parameters"].values():
            d = pat_steps[p["op_type"]].get(p["layer"], 5) - p["steps"]
            fewer, more, same = fewer + (d < 0), more + (d > 0), same + (d == 0)
        print("- %s: predicted (laws without this width) vs measured steps on %s: %d equal, %d fewer, %d more; "
              "predicted FLOPs / Keller×5 = %s" % (os.path.basename(path), run, same, fewer, more,
                                                   fmt(pred["totals"].get("ratio"))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--runs", required=True)
    a = ap.parse_args()
    series = read_summary(os.path.join(a.dir, "summary.csv.gz"))
    sections = [
        ("Runs", lambda: runs_table(series, a.runs)),
        ("Burn-in, q = 0.05", lambda: burn_in_table(series, "0.05")),
        ("Burn-in, q = 0.5", lambda: burn_in_table(series, "0.5")),
        ("Series that never settled (of 2 per matrix and run)",
         lambda: unsettled_table(os.path.join(a.dir, "fit.stderr"))),
        ("Settled q0.05 (sigma/||G||_F)", lambda: settled_table(series, "0.05")),
        ("Laws summary", lambda: laws_summary(os.path.join(a.dir, "laws.json"))),
        ("Laws q = 0.05", lambda: laws_table(os.path.join(a.dir, "laws.json"), 0.05)),
        ("Laws q = 0.5", lambda: laws_table(os.path.join(a.dir, "laws.json"), 0.5)),
        ("Last two blocks q = 0.05", lambda: laws_table(os.path.join(a.dir, "laws_last_blocks.json"), 0.05)),
        ("Last two blocks q = 0.5", lambda: laws_table(os.path.join(a.dir, "laws_last_blocks.json"), 0.5)),
        ("Recommended configs", lambda: config_table(a.dir)),
        ("Mean recommended steps", lambda: steps_by_op(a.dir)),
        ("Predicted vs measured", lambda: predicted_vs_measured(a.dir)),
    ]
    for title, fn in sections:
        print("\n### %s\n" % title)
        fn()


if __name__ == "__main__":
    main()
