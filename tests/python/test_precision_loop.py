"""Recommendations hold where Muon runs: `muspec recommend --verify` (bf16 by default) on the
largest sample run, then the schedules it wrote are run by real PyTorch in bf16 (muspec_torch's
newton_schulz: bf16 matrix products, float32 scalars) on the same momentum buffers, and every
direction at or above each parameter's lower bound must land in the band the config promises.
The oracle is independent of muspec's C++ emulation: torch's own bf16 matmul and numpy's SVD.
The same check shows that a float64-only plan would have broken its promise.

Needs the muspec binary (MUSPEC_BINARY, set by ctest); skipped without it.
"""
import json
import os
import pathlib
import subprocess
import tempfile
import unittest

import torch

from bf16_gains import torch_bf16_gains
from build_info import sanitized_build

ROOT = pathlib.Path(__file__).resolve().parents[2]
RUN = ROOT / "sample_data" / "runs" / "d80"
BINARY = os.environ.get("MUSPEC_BINARY", "")


def momentum_by_name(step_dir):
    """The run's own momentum buffers, by parameter name (ids from its manifest's param_order)."""
    order = json.loads((RUN / "muspec-run.json").read_text())["param_order"]
    state = torch.load(step_dir / "optimizer.pt", map_location="cpu")["state"]
    return {order[i]: s["momentum_buffer"].double().numpy() for i, s in state.items() if "momentum_buffer" in s}


@unittest.skipUnless(BINARY and os.path.exists(BINARY), "MUSPEC_BINARY is not set (run through ctest)")
@unittest.skipIf(sanitized_build(), "sanitizer build: bf16 NS at -O0 is slow; the Release build runs it")
class PrecisionLoopTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = pathlib.Path(cls.tmp.name)
        cls.h5 = cls.dir / "d80.h5"
        subprocess.run([BINARY, "scan", str(RUN / "checkpoint-300"), "-o", str(cls.h5), "-q"], check=True,
                       capture_output=True)
        cls.momentum = momentum_by_name(RUN / "checkpoint-300")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def recommend(self, *extra):
        out = self.dir / ("cfg" + "".join(extra).replace("-", "_") + ".json")
        r = subprocess.run([BINARY, "recommend", "--spectra", str(self.h5), "-o", str(out), "-q", *extra],
                           capture_output=True, text=True)
        self.assertIn(r.returncode, (0, 1), r.stderr)
        return json.loads(out.read_text())

    def outside(self, cfg, band):
        """Parameters with a direction at or above the lower bound outside `band`, in torch bf16."""
        bad = []
        for name, entry in cfg["parameters"].items():
            s, gains = torch_bf16_gains(self.momentum[name], entry)
            g = gains[s >= entry["lower_bound"]]
            if g.size and (g.min() < band[0] or g.max() > band[1]):
                bad.append((name, float(g.min()), float(g.max())))
        return bad

    def test_verified_bf16_config_keeps_every_direction_in_its_promised_band(self):
        cfg = self.recommend("--verify")
        prov = cfg["provenance"]
        self.assertEqual(prov["precision"], "bf16")
        self.assertTrue(prov["verified"])
        band = prov["precision_band"]
        self.assertLess(band[0], prov["band"][0])  # the promise at bf16 is wider than in exact arithmetic
        self.assertEqual(len(cfg["parameters"]), 28)
        self.assertTrue(all(p["requirement_met"] for p in cfg["parameters"].values()))
        self.assertEqual(self.outside(cfg, band), [])

    def test_a_float64_plan_breaks_its_promise_in_bf16(self):
        cfg = self.recommend("--precision", "f64")
        band = cfg["provenance"]["precision_band"]
        self.assertEqual(band, cfg["provenance"]["band"])  # f64 promises the exact band
        self.assertTrue(self.outside(cfg, band))  # ... which bf16 arithmetic leaves

    def test_without_verify_values_under_the_bf16_floor_are_not_promised(self):
        cfg = self.recommend()
        for name, p in cfg["parameters"].items():
            if p["lower_bound"] < 3e-3:
                self.assertFalse(p["requirement_met"], name)


if __name__ == "__main__":
    unittest.main()
