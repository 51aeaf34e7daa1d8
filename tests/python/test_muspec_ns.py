"""muspec.ns (the NS calculus of the compiled module) against the CLI's `muspec ns` on the same
schedules and spectra, and against the Keller Jordan quintic iterated in NumPy."""
import os
import re
import tempfile
import unittest

import numpy as np

from module_support import muspec, needs_cli, needs_module, run_cli

KELLER = (3.4445, -4.7750, 2.0315)


@needs_module
class NsAgainstNumpy(unittest.TestCase):
    def test_eval_is_the_iterated_quintic(self):
        sigma = np.sort(np.random.default_rng(2).uniform(0, 1, 60) ** 3)
        fro = float(np.sqrt(np.sum(sigma ** 2)))
        r = muspec.ns.eval("keller", sigma, steps=5)
        x = sigma / (fro + 1e-7)  # Keller's normalization: X / (||X||_F + eps)
        for _ in range(5):
            a, b, c = KELLER
            x = a * x + b * x ** 3 + c * x ** 5
        lo, hi = r["band"]
        self.assertEqual((lo, hi), (0.68, 1.21))
        self.assertEqual(r["in_band"], int(np.sum((x >= lo) & (x <= hi))))
        np.testing.assert_allclose(r["output_range"], (x.min(), x.max()), rtol=1e-9)
        np.testing.assert_allclose(r["worst_deviation"], np.max(np.abs(x - 1)), rtol=1e-9)
        self.assertEqual(muspec.ns.schedule("keller")["name"], "keller")
        self.assertIn("polar-express", muspec.ns.catalog())

    def test_errors(self):
        with self.assertRaisesRegex(muspec.UsageError, "nope"):
            muspec.ns.threshold("nope")
        with self.assertRaises(muspec.UsageError):
            muspec.ns.min_steps("keller", 0.0)


@needs_module
@needs_cli
class NsAgainstTheCli(unittest.TestCase):
    def test_threshold_and_min_steps(self):
        for name, steps in (("keller", 5), ("polar-express", 5), ("cubic", 8)):
            out = run_cli("ns", "threshold", "--schedule", name, "--steps", steps, "--lower", "1e-3").stdout
            cli = float(re.search(r"threshold: (\S+)", out).group(1))
            self.assertAlmostEqual(muspec.ns.threshold(name, steps) / cli, 1, delta=1e-5)
            m = re.search(r"lands in the band: (\d+)", out)
            self.assertEqual(muspec.ns.min_steps(name, 1e-3), int(m.group(1)) if m else None)

    def test_eval_equals_the_cli_csv(self):
        import pandas as pd
        sigma = np.sort(np.random.default_rng(3).uniform(0, 1, 40) ** 3)
        with tempfile.TemporaryDirectory() as d:
            np.save(os.path.join(d, "s.npy"), sigma)
            run_cli("ns", "eval", "--schedule", "keller", "--sigma", os.path.join(d, "s.npy"), "-o",
                    os.path.join(d, "e.csv"), "--quiet")
            cli = pd.read_csv(os.path.join(d, "e.csv")).iloc[0]
        r = muspec.ns.eval("keller", sigma)
        self.assertEqual(r["in_band"], cli["in_band"])
        for key, col in (("band_fraction", "band_fraction"), ("energy_fraction", "energy_fraction"),
                         ("worst_deviation", "worst_deviation")):
            self.assertAlmostEqual(r[key], cli[col], delta=1e-14)
        self.assertAlmostEqual(r["output_range"][1], cli["out_max"], delta=1e-14)


if __name__ == "__main__":
    unittest.main()
