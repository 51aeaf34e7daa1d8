"""The spectral family in the trainer: muspec_torch.spectral_power against numpy's SVD, and the
loop `muspec recommend --power P` -> SpectralMuon on the real momentum buffers of a sample run.

Oracles: U diag(sigma^p) V^T from numpy's float64 SVD; the per-direction values u_i^T X v_i of
torch's own float32 iteration. The recommendation promises every sigma at or above the quantile
within the tolerance of sigma^p with the configured steps; the adapter must keep that promise.
"""
import json
import os
import pathlib
import subprocess
import tempfile
import unittest
from fractions import Fraction

import numpy as np
import torch

from muspec_torch.config import ConfigError
from muspec_torch.spectral_power import (SpectralMapSpec, SpectralMuon, load_spectral_config, spectral_power)

ROOT = pathlib.Path(__file__).resolve().parents[2]
RUN = ROOT / "sample_data" / "runs" / "d40"
BINARY = os.environ.get("MUSPEC_BINARY", "")


def planted(rows, cols, sigma, seed):
    """A float64 matrix with exactly the singular values `sigma` and random singular vectors."""
    g = np.random.default_rng(seed)
    u, _ = np.linalg.qr(g.standard_normal((rows, len(sigma))))
    v, _ = np.linalg.qr(g.standard_normal((cols, len(sigma))))
    return u @ np.diag(sigma) @ v.T


def direction_errors(G, X, p):
    """|u_i^T X v_i / sigma_i^p - 1| for each direction of G, with sigma ascending."""
    U, S, Vt = np.linalg.svd(G, full_matrices=False)
    vals = np.einsum("ij,ik,kj->j", U, X, Vt.T)
    order = np.argsort(S)
    return S[order], np.abs(vals[order] / S[order] ** float(p) - 1.0)


class SpectralPowerTest(unittest.TestCase):
    def test_converged_iterations_equal_the_svd(self):
        sigma = np.logspace(-3, 0, 24)
        for shape in ((40, 24), (24, 40)):
            G = planted(*shape, sigma, seed=shape[0])
            U, S, Vt = np.linalg.svd(G, full_matrices=False)
            for p, it in ((Fraction(1, 2), "coupled-newton"), (Fraction(1, 4), "coupled-newton"),
                          (Fraction(1, 2), "guo-higham"), (Fraction(3, 10), "guo-higham"), (Fraction(0), "coupled-newton")):
                spec = SpectralMapSpec(power=p, iteration=it, absolute=0.0, relative=0.0)
                X = spectral_power(torch.tensor(G), spec, 40, dtype=torch.float64).numpy()
                exact = U @ np.diag(S ** float(p)) @ Vt
                with self.subTest(shape=shape, p=str(p), it=it):
                    self.assertEqual(X.shape, G.shape)
                    self.assertLess(np.linalg.norm(X - exact) / np.linalg.norm(exact), 1e-9)

    def test_few_steps_leave_small_values_unconverged(self):
        # The oracle sees what too few steps leave: after 5 steps per call the smallest value is far
        # off (it grows only x1.5 per step); 30 steps converge every value.
        G = planted(32, 32, np.logspace(-4, 0, 32), seed=3)
        spec = SpectralMapSpec(power=Fraction(1, 2), absolute=0.0, relative=0.0)
        X = spectral_power(torch.tensor(G), spec, 5, dtype=torch.float64).numpy()
        self.assertGreater(direction_errors(G, X, spec.power)[1][0], 0.1)
        X = spectral_power(torch.tensor(G), spec, 30, dtype=torch.float64).numpy()
        self.assertLess(direction_errors(G, X, spec.power)[1].max(), 1e-6)

    def test_p_one_is_the_identity_and_bad_specs_are_refused(self):
        G = torch.randn(5, 3, dtype=torch.float64)
        self.assertTrue(torch.equal(spectral_power(G, SpectralMapSpec(power=Fraction(1)), 0, torch.float64), G))
        with self.assertRaises(ValueError):
            SpectralMapSpec(power=Fraction(3, 10), iteration="coupled-newton")
        with self.assertRaises(ValueError):
            spectral_power(G, SpectralMapSpec(power=Fraction(1, 2)), 0)


@unittest.skipUnless(BINARY and os.path.exists(BINARY), "MUSPEC_BINARY is not set (run through ctest)")
class RecommendPowerLoopTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = pathlib.Path(cls.tmp.name)
        h5 = d / "d40.h5"
        subprocess.run([BINARY, "scan", str(RUN / "checkpoint-300"), "-o", str(h5), "-q"], check=True, capture_output=True)
        cls.config_path = d / "family.json"
        subprocess.run([BINARY, "recommend", "--spectra", str(h5), "--power", "1/2", "--regularization", "0,0",
                        "-q", "-o", str(cls.config_path)], check=True, capture_output=True)
        cls.doc = json.loads(cls.config_path.read_text())
        order = json.loads((RUN / "muspec-run.json").read_text())["param_order"]
        state = torch.load(RUN / "checkpoint-300" / "optimizer.pt", map_location="cpu")["state"]
        cls.momentum = {order[i]: s["momentum_buffer"].double() for i, s in state.items() if "momentum_buffer" in s}

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_adapter_keeps_the_promise_in_float32(self):
        cfg = load_spectral_config(self.config_path)
        q = self.doc["provenance"]["quantile"]
        self.assertEqual(len(cfg.steps), 28)
        for name, steps in cfg.steps.items():
            G = self.momentum[name].numpy()
            X = spectral_power(torch.tensor(G), cfg.spec, steps, dtype=torch.float32).double().numpy()
            s, err = direction_errors(G, X, cfg.spec.power)
            above = s >= np.quantile(s, q) * (1 - 1e-12)
            with self.subTest(name=name, steps=steps):
                self.assertLessEqual(err[above].max(), cfg.spec.tolerance * 1.05)
                if steps > 1:  # minimal: one step fewer breaks it
                    X1 = spectral_power(torch.tensor(G), cfg.spec, steps - 1, dtype=torch.float64).numpy()
                    self.assertGreater(direction_errors(G, X1, cfg.spec.power)[1][above].max(), cfg.spec.tolerance * 0.95)

    def test_optimizer_step_applies_each_parameters_own_steps(self):
        cfg = load_spectral_config(self.config_path)
        names = sorted(cfg.steps)[:3]
        params = [(n, torch.nn.Parameter(torch.zeros_like(self.momentum[n], dtype=torch.float32))) for n in names]
        for input_kind in ("momentum", "rms_normalized"):
            doc = json.loads(json.dumps(self.doc))
            doc["spectral_map"]["input"] = input_kind
            opt = SpectralMuon(params, doc, lr=1.0, momentum=0.5, nesterov=False, adjust_lr="none")
            for (n, p) in params:
                p.data.zero_()
                p.grad = self.momentum[n].float()
            opt.step()
            for (n, p) in params:
                g = self.momentum[n].numpy()
                inp = 0.5 * g if input_kind == "momentum" else g / (np.abs(g) + 1e-8)  # first step: m_hat = g, v_hat = g^2
                U, S, Vt = np.linalg.svd(inp, full_matrices=False)
                exact = U @ np.diag(np.sqrt(S)) @ Vt
                got = -p.detach().double().numpy()
                with self.subTest(input=input_kind, name=n):
                    self.assertLess(np.linalg.norm(got - exact) / np.linalg.norm(exact), 0.05)

    def test_malformed_configs_are_named(self):
        bad = json.loads(json.dumps(self.doc))
        bad["parameters"][next(iter(bad["parameters"]))]["steps"] = 0
        with self.assertRaisesRegex(ConfigError, r"parameters\..*steps"):
            load_spectral_config(bad)
        bad = json.loads(json.dumps(self.doc))
        bad["version"] = 1
        with self.assertRaisesRegex(ConfigError, "version"):
            load_spectral_config(bad)
        with self.assertRaisesRegex(ValueError, "not in"):
            SpectralMuon([("not.a.parameter", torch.nn.Parameter(torch.zeros(4, 4)))], self.doc)


if __name__ == "__main__":
    unittest.main()
