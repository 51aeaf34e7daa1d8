"""muspec.fit / predict / recommend / ns.design (the compiled module): each equals the CLI's JSON
for the same inputs (the CLI runs the same library, so each is also checked against an
independent computation with NumPy: the fitted line by weighted least squares, the predictions
by evaluating the power law, the recommended steps and the designed schedule by iterating the NS
polynomials), on DataFrames as on stores; errors carry the CLI's messages; the GIL is released."""
import copy
import json
import os
import tempfile
import threading
import time
import unittest
import warnings

import numpy as np

from module_support import ROOT, muspec, needs_cli, needs_module, run_cli

try:
    import pandas as pd
except ImportError:
    pd = None

RUNS = [os.path.join(ROOT, "sample_data", "runs", d) for d in ("d16", "d24", "d40", "d56", "d80")]
NULL_DRAWS = "20"  # the null's simulation is not what is checked here; keep it short
KELLER = (3.4445, -4.7750, 2.0315)  # Keller Jordan's published quintic


def without(doc, *keys):
    doc = copy.deepcopy(doc)
    for k in keys:
        node = doc
        *path, last = k.split(".")
        for p in path:
            node = node[p]
        node.pop(last, None)
    return doc


def quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


def iterate(polys, s, steps):
    """NumPy's own NS scalar iteration: s -> a s + b s^3 + c s^5, the last polynomial repeated."""
    s = np.asarray(s, dtype=np.float64)
    for i in range(steps):
        a, b, c = (list(polys[min(i, len(polys) - 1)]) + [0.0])[:3]
        s = a * s + b * s ** 3 + c * s ** 5
    return s


@needs_module
@needs_cli
@unittest.skipIf(pd is None, "pandas is not installed")
class LawsAgainstTheCli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        cls.h5 = os.path.join(d, "spectra.h5")
        run_cli("scan", *RUNS, "--kind", "momentum", "-o", cls.h5, "--quiet")
        cls.laws_path = os.path.join(d, "laws.json")
        run_cli("fit", cls.h5, "-o", cls.laws_path, "--null-draws", "0", "-q")
        with open(cls.laws_path) as f:
            cls.cli_laws = json.load(f)
        cls.df, cls.sigma = muspec.read_spectra(cls.h5, sigma=True)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_fit_equals_the_cli_on_the_store_and_on_the_dataframe(self):
        laws = quiet(muspec.fit, self.h5, null_draws=0)
        self.assertEqual(without(laws, "created"), without(self.cli_laws, "created"))
        self.assertGreater(sum(law["status"] == "ok" for law in laws["laws"]), 0)
        from_frame = quiet(muspec.fit, self.df, null_draws=0)
        self.assertEqual(from_frame["inputs"], [])
        self.assertEqual(without(from_frame, "created", "inputs"), without(self.cli_laws, "created", "inputs"))
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "laws.json")
            quiet(muspec.fit, [self.h5], output=out, null_draws=int(NULL_DRAWS))  # output= writes the file
            with open(out) as f:
                py = json.load(f)
            run_cli("fit", self.h5, "-o", out, "--null-draws", NULL_DRAWS, "-q")
            with open(out) as f:
                cli = json.load(f)
        # The Gaussian null's eigenvalues go through OpenBLAS, whose threading differs once torch
        # is loaded into the process: equal to rounding, not to the bit.
        self.assert_same_json(without(py, "created"), without(cli, "created"), rtol=1e-12)
        self.assertTrue(any(law.get("null", {}).get("done") for law in py["laws"]))

    def assert_same_json(self, a, b, rtol, path="$"):
        if isinstance(a, dict) and isinstance(b, dict):
            self.assertEqual(sorted(a), sorted(b), path)
            for k in a:
                self.assert_same_json(a[k], b[k], rtol, f"{path}.{k}")
        elif isinstance(a, list) and isinstance(b, list):
            self.assertEqual(len(a), len(b), path)
            for i, (x, y) in enumerate(zip(a, b)):
                self.assert_same_json(x, y, rtol, f"{path}[{i}]")
        elif isinstance(a, float) and isinstance(b, float):
            self.assertTrue(np.isclose(a, b, rtol=rtol, atol=0), f"{path}: {a} != {b}")
        else:
            self.assertEqual(a, b, path)

    def test_a_filtered_dataframe_equals_the_cli_on_the_same_rows(self):
        # Only the attention matrices: the CLI sees the same rows through --group on a store
        # written from them, so the check is on the library reading the DataFrame's cells.
        keep = self.df[self.df.op_type.isin(["q", "k"])]
        sigma = [self.sigma[i] for i in keep.index]
        laws = quiet(muspec.fit, keep, sigma=sigma, null_draws=0, quantiles=[0.05])
        with tempfile.TemporaryDirectory() as d:
            h5 = os.path.join(d, "qk.h5")
            recs = []
            for (_, row), s in zip(keep.iterrows(), sigma):
                r = {k: row[k] for k in ("name", "tensor", "file", "rows", "cols", "run", "step", "model_params",
                                          "params_source", "kind", "parameter", "op_type", "layer", "num_layers",
                                          "rel_depth", "muon", "method", "floor")}
                r["params_source"] = "" if pd.isna(r["params_source"]) else r["params_source"]
                recs.append(dict(r, sigma=s, frobenius=row["frobenius"]))
            levels = [float(c[1:-len("_rel_frob")]) for c in keep.columns if c.startswith("q") and c.endswith("_rel_frob")]
            muspec.write_spectra(h5, recs, quantiles=levels)
            out = os.path.join(d, "laws.json")
            run_cli("fit", h5, "-o", out, "--null-draws", "0", "--quantiles", "0.05", "-q")
            with open(out) as f:
                cli = json.load(f)
        self.assertEqual(without(laws, "created", "inputs"), without(cli, "created", "inputs"))
        self.assertEqual({law["group"]["op_type"] for law in laws["laws"]}, {"q", "k"})

    def test_fitted_lines_against_numpy_least_squares(self):
        checked = 0
        for law in self.cli_laws["laws"]:
            if law["status"] != "ok" or self.cli_laws["method"] != "wls":
                continue
            pts = law["runs"]
            x = np.log([p["model_params"] for p in pts])
            y = np.array([p["log_value"] for p in pts])
            w = np.array([p["weight"] for p in pts])
            beta, log_a = np.polyfit(x, y, 1, w=np.sqrt(w))
            self.assertAlmostEqual(law["beta"], beta, delta=1e-9 * max(1, abs(beta)))
            self.assertAlmostEqual(law["log_a"], log_a, delta=1e-9 * max(1, abs(log_a)))
            checked += 1
        self.assertGreater(checked, 0)

    def test_predict_equals_the_cli_and_the_power_law(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "pred.json")
            run_cli("predict", "--laws", self.laws_path, "--params", "3e7", "--level", "0.9", "-o", out, "-q")
            with open(out) as f:
                cli = json.load(f)
        got = muspec.predict(self.laws_path, 3e7, level=0.9)
        self.assertEqual(got, cli)
        from_dict = muspec.predict(self.cli_laws, 3e7, level=0.9)  # fit's dict, no file
        self.assertEqual(without(from_dict, "laws"), without(cli, "laws"))
        ok = [law for law in self.cli_laws["laws"] if law["status"] == "ok"]
        self.assertEqual(len(got["predictions"]), len(ok))
        for p, law in zip(got["predictions"], ok):
            expected = np.exp(law["log_a"] + law["beta"] * np.log(3e7))
            self.assertAlmostEqual(p["predicted"], expected, delta=1e-12 * expected)
            self.assertLessEqual(p["member_lower"], p["lower"])
            self.assertLess(p["lower"], p["predicted"])
            self.assertLess(p["predicted"], p["upper"])

    def test_recommend_equals_the_cli_and_numpys_ns_iteration(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "ns.json")
            run_cli("recommend", "--spectra", self.h5, "--run", "d40", "-o", out, "-q")
            with open(out) as f:
                cli = json.load(f)
        got = quiet(muspec.recommend, self.h5, run="d40")
        volatile = ("command", "created")
        self.assertEqual(without(got, *volatile), without(cli, *volatile))
        from_frame = quiet(muspec.recommend, self.df, run="d40")
        self.assertEqual(from_frame["provenance"]["inputs"], ["(DataFrame)"])
        self.assertEqual(without(from_frame, *volatile, "provenance.inputs"), without(cli, *volatile, "provenance.inputs"))
        lo = got["provenance"]["band"][0]
        d40 = self.df[(self.df.run == "d40") & self.df.muon]
        checked = 0
        for name, p in got["parameters"].items():
            ell, k = p["lower_bound"], p["steps"]
            polys = [tuple(c) for c in p["coefficients"]]
            shrink = 1.0 / (1.0 + p["normalization"]["delta"])  # X / (||X||_F (1 + delta) + eps)
            self.assertEqual(polys[0], KELLER)
            # the lower bound is one of the measured 5 % quantiles of sigma/||G||_F (numpy's own)
            rows = d40[d40.parameter == name]
            measured = [np.quantile(self.sigma[i], 0.05) / self.df.loc[i, "frobenius"] for i in rows.index]
            self.assertTrue(min(measured) * (1 - 1e-9) <= ell <= max(measured) * (1 + 1e-9), name)
            if not p["requirement_met"]:
                continue
            # k steps lift every s in [ell, 1] to the band's lower end; k - 1 do not (fewest steps)
            s = np.concatenate(([ell], np.geomspace(ell, 1.0, 400)))
            self.assertGreaterEqual(iterate(polys, s * shrink, k).min(), lo * (1 - 1e-9), name)
            if k > 1:
                self.assertLess(iterate(polys, ell * shrink, k - 1), lo, name)
            checked += 1
        self.assertGreater(checked, 0)

    def test_recommend_verify_equals_the_cli(self):
        # --verify runs NS at bf16 on every measured matrix, read again from its checkpoint (the
        # DataFrame's `file` column names it): the smallest run keeps this short.
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "ns.json")
            p = run_cli("recommend", "--spectra", self.h5, "--run", "d16", "--verify", "-o", out, "-q", check=False)
            self.assertIn(p.returncode, (0, 1), p.stderr)
            with open(out) as f:
                cli = json.load(f)
        self.assertTrue(cli["provenance"]["verified"])
        got = quiet(muspec.recommend, self.df[self.df.run == "d16"], verify=True)
        self.assertEqual(without(got, "command", "created", "provenance.inputs"),
                         without(cli, "command", "created", "provenance.inputs"))
        self.assertTrue(any("verified" in p for p in got["parameters"].values()))

    def test_recommend_from_laws_equals_the_cli(self):
        args = ["--laws", self.laws_path, "--params", "1e6", "--layers", "6"]
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "ns.json")
            p = run_cli("recommend", *args, "-o", out, "-q", check=False)
            self.assertIn(p.returncode, (0, 1), p.stderr)  # 1: blocks no law covers were skipped
            with open(out) as f:
                cli = json.load(f)
            got = quiet(muspec.recommend, laws=self.laws_path, params=1e6, layers=6,
                        output=os.path.join(d, "py.json"))
            with open(os.path.join(d, "py.json")) as f:
                self.assertEqual(json.load(f), got)
        self.assertEqual(without(got, "command", "created"), without(cli, "command", "created"))

    def test_errors_carry_the_clis_messages(self):
        with tempfile.TemporaryDirectory() as d:
            p = run_cli("predict", "--laws", self.laws_path, "--params", "10", check=False)
            self.assertEqual(p.returncode, 2)
            with self.assertRaises(muspec.UsageError) as cm:
                muspec.predict(self.laws_path, 10)
            self.assertIn(str(cm.exception), p.stderr)
            bad = os.path.join(d, "bad.json")
            with open(bad, "w") as f:
                f.write('{"format": "something else"}')
            p = run_cli("predict", "--laws", bad, "--params", "1e6", check=False)
            with self.assertRaises(muspec.InputError) as cm:
                muspec.predict(bad, 1e6)
            self.assertIn(str(cm.exception), p.stderr)
            p = run_cli("recommend", "--spectra", self.h5, "-o", os.path.join(d, "x.json"), check=False)
            self.assertEqual(p.returncode, 2)  # several runs and none chosen
            with self.assertRaises(muspec.UsageError) as cm:
                muspec.recommend(self.h5)
            self.assertIn(str(cm.exception), p.stderr)
        with self.assertRaisesRegex(muspec.UsageError, "DataFrame: no column 'muon'"):
            muspec.fit(self.df.drop(columns=["muon"]))
        # One option check in the library: the same refusal, before any input is read.
        missing = os.path.join(tempfile.gettempdir(), "muspec-no-such-scan.h5")
        for n in (100001, -1):
            p = run_cli("fit", missing, "--bootstrap", str(n), "-o", os.path.join(tempfile.gettempdir(), "x.json"),
                        check=False)
            self.assertEqual(p.returncode, 2)
            with self.assertRaises(muspec.UsageError) as cm:
                muspec.fit([missing], bootstrap=n)
            self.assertIn("--bootstrap", str(cm.exception))
            self.assertIn(str(cm.exception), p.stderr)


@needs_module
class Design(unittest.TestCase):
    @needs_cli
    def test_design_equals_the_cli(self):
        for args, kw in ((["-l", "1e-3", "-k", "8"], dict(lower=1e-3, steps=8)),
                         (["-l", "0.01", "-k", "5", "--degree", "3", "--safety", "1.02"],
                          dict(lower=0.01, steps=5, degree=3, safety=1.02))):
            cli = json.loads(run_cli("ns", "design", *args, "--json").stdout)
            self.assertEqual(quiet(muspec.ns.design, **kw), cli)

    def test_designed_polynomials_iterated_with_numpy(self):
        sched = muspec.ns.design(1e-3, 10)
        polys = [tuple(p) for p in sched["steps"]]
        self.assertEqual(len(polys), 10)
        s = np.geomspace(1e-3, 1.0, 5000)
        out = iterate(polys, s, 10)
        self.assertLess(np.abs(out - 1).max(), 1e-3)   # converged: [1e-3, 1] ends within the tolerance
        self.assertGreater(iterate(polys, s, 5).min(), 0)
        with self.assertWarnsRegex(UserWarning, "steps_insufficient"):
            muspec.ns.design(1e-3, 2)
        with self.assertRaises(muspec.UsageError):
            muspec.ns.design(2.0, 5)


@needs_module
class GilReleased(unittest.TestCase):
    def test_another_thread_runs_during_a_computation(self):
        x = np.random.default_rng(0).standard_normal((1200, 1200))
        ticks = []
        stop = threading.Event()

        def count():
            while not stop.is_set():
                ticks.append(time.perf_counter())
                time.sleep(0.001)

        t = threading.Thread(target=count)
        t.start()
        try:
            t0 = time.perf_counter()
            muspec.singular_values(x, method="svd")
            t1 = time.perf_counter()
        finally:
            stop.set()
            t.join()
        during = [v for v in ticks if t0 < v < t1]
        # with the GIL held the counting thread could not run at all during the call
        self.assertGreater(len(during), 5, f"{len(during)} ticks during a {t1 - t0:.3f} s call")


if __name__ == "__main__":
    unittest.main()
