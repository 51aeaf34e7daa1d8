"""Tests of tools/python/muspec_torch (plain unittest; run with /usr/bin/python3).

    /usr/bin/python3 tests/python/run_tests.py          # what ctest runs
    PYTHONPATH=tools/python /usr/bin/python3 -m unittest discover -s tests/python -v

Lines starting with ``MEASURED`` (on stderr) are the numbers quoted in docs/trainer-adapter.md.
Coefficients used as inputs are the published ones from the NS reference: Keller Jordan's
quintic, the Polar Express table (after the 1.01 safety factor, 6 decimals) and You Jiacheng's
6-step set.
"""
import copy
import glob
import json
import math
import os
import sys
import tempfile
import time
import unittest
import warnings

import numpy as np

try:
    import torch
except ImportError:  # run_tests.py exits 77 before we get here; plain discover skips loudly
    torch = None

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools", "python"))

if torch is not None:
    import muspec_torch as mt
    torch.set_num_threads(1)

KJ = (3.4445, -4.7750, 2.0315)
PE = [  # Polar Express, published table with the 1.01 safety factor applied to rows 1-7
    (8.205160, -22.901935, 16.460725),
    (4.066395, -2.861154, 0.518400),
    (3.909595, -2.823352, 0.525037),
    (3.285564, -2.415302, 0.485294),
    (2.277873, -1.619822, 0.398481),
    (1.872576, -1.230704, 0.358516),
    (1.856437, -1.213239, 0.356800),
    (1.875, -1.25, 0.375),
]
YOU6 = [(3955 / 1024, -8306 / 1024, 5008 / 1024), (3735 / 1024, -6681 / 1024, 3463 / 1024),
        (3799 / 1024, -6499 / 1024, 3211 / 1024), (4019 / 1024, -6385 / 1024, 2906 / 1024),
        (2677 / 1024, -3029 / 1024, 1162 / 1024), (2172 / 1024, -1833 / 1024, 682 / 1024)]
CUBIC = (1.5, -0.5, 0.0)


def measured(msg):
    print(f"MEASURED {msg}", file=sys.stderr)


def entry(coeffs, delta=0.0, eps=1e-7, **extra):
    e = {"steps": len(coeffs), "coefficients": [list(t) for t in coeffs],
         "normalization": {"delta": delta, "epsilon": eps}}
    e.update(extra)
    return e


def ns_config(parameters=None, patterns=None, default=None, **extra):
    doc = {"format": "muspec.ns_config", "version": 1, "muspec_version": "test",
           "created": "2026-01-01T00:00:00Z", "command": "unit test",
           "provenance": {"mode": "plan", "inputs": [], "quantile": 0.05,
                          "family": "polar-express", "band": [0.7, 1.3], "margin": 1.0,
                          "target_params": None, "level": None},
           "parameters": parameters or {}, "patterns": patterns or [], "default": default,
           "totals": {"flops": 1.0, "default_flops": 1.0, "ratio": 1.0, "parameters": 0}}
    doc.update(extra)
    return doc


# ---------------------------------------------------------------------------------------------
# independent float64 oracles (numpy only)

def scalar_map(x, coeffs):
    for a, b, c in coeffs:
        x = a * x + b * x ** 3 + c * x ** 5
    return x


def oracle_svd(G, coeffs, delta=0.0, eps=1e-7):
    """U f(S) V^T with f the composed scalar polynomials, from numpy's SVD (float64)."""
    M = np.asarray(G, dtype=np.float64)
    M = M.reshape(M.shape[0], -1)
    U, S, Vt = np.linalg.svd(M, full_matrices=False)
    x = S / (np.linalg.norm(M) * (1 + delta) + eps)
    return (U * scalar_map(x, coeffs)) @ Vt


def oracle_poly(G, coeffs, delta=0.0, eps=1e-7):
    """The matrix iteration X <- aX + (bA + cA^2)X written directly in numpy float64."""
    M = np.asarray(G, dtype=np.float64)
    M = M.reshape(M.shape[0], -1)
    t = M.shape[0] > M.shape[1]
    X = M.T if t else M
    X = X / (np.linalg.norm(X) * (1 + delta) + eps)
    for a, b, c in coeffs:
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    return X.T if t else X


def matrix_with_spectrum(m, n, svals, seed):
    """U diag(svals) V^T with random orthonormal U (m x r), V (n x r)."""
    rng = np.random.default_rng(seed)
    r = len(svals)
    U, _ = np.linalg.qr(rng.standard_normal((m, r)))
    V, _ = np.linalg.qr(rng.standard_normal((n, r)))
    return (U * np.asarray(svals)) @ V.T


def rel_err(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@unittest.skipIf(torch is None, "torch is not importable: muspec_torch tests skipped")
class TestOptimizerAppliesSchedules(unittest.TestCase):
    """(a) one Muon step equals the configured polynomial iteration, per parameter."""

    # name -> (shape, schedule coefficients, delta)
    SPECS = {
        "blocks.0.attn.q.weight": ((40, 24), [KJ] * 5, 0.0),          # tall: transposed
        "blocks.0.mlp.up.weight": ((24, 56), PE[:6], 0.01),           # wide, delta
        "blocks.1.attn.o.weight": ((32, 32), YOU6, 0.0),              # square
        "blocks.1.conv.weight": ((8, 3, 3, 3), [CUBIC] * 4 + [KJ], 0.0),  # 4-D, flattened 8x27
    }

    def setUp(self):
        self.build()

    def build(self, decades=3.0, param_dtype=None):
        """Gradients U diag(logspace(0, -decades)) V^T and zero parameters, one per SPECS."""
        param_dtype = param_dtype or torch.float32
        self.grads, self.params = {}, []
        for i, (name, (shape, _, _)) in enumerate(self.SPECS.items()):
            m = shape[0]
            n = int(np.prod(shape[1:]))
            r = min(m, n)
            svals = np.logspace(0, -decades, r)     # several decades: the polynomials matter
            G = matrix_with_spectrum(m, n, svals, seed=10 + i).reshape(shape)
            self.grads[name] = G
            p = torch.zeros(shape, dtype=param_dtype, requires_grad=True)
            self.params.append((name, p))
        self.config = ns_config(parameters={
            name: entry(c, delta=d, shape=list(s)) for name, (s, c, d) in self.SPECS.items()})

    def one_step(self, ns_dtype, adjust_lr="none"):
        opt = mt.Muon(self.params, self.config, lr=1.0, momentum=0.0, nesterov=False,
                      weight_decay=0.0, ns_dtype=ns_dtype, adjust_lr=adjust_lr)
        for name, p in self.params:
            p.grad = torch.tensor(self.grads[name], dtype=torch.float32).to(p)
        opt.step()
        return {name: -p.detach().cpu().double().numpy().reshape(p.shape[0], -1)
                for name, p in self.params}

    def errors(self, updates, name):
        """(max abs error vs the float64 iteration, vs U f(S) V^T, max error of the per-direction
        gains diag(U^T update V) vs f(s), relative Frobenius error vs U f(S) V^T)."""
        shape, coeffs, delta = self.SPECS[name]
        G = np.asarray(self.grads[name], dtype=np.float32).astype(np.float64)
        G = G.reshape(shape[0], -1)
        ref_svd = oracle_svd(G, coeffs, delta)
        U, S, Vt = np.linalg.svd(G, full_matrices=False)
        x = S / (np.linalg.norm(G) * (1 + delta) + 1e-7)
        gains = np.einsum("ij,ik,kj->j", U, updates[name], Vt.T)
        return (float(np.abs(updates[name] - oracle_poly(G, coeffs, delta)).max()),
                float(np.abs(updates[name] - ref_svd).max()),
                float(np.abs(gains - scalar_map(x, coeffs)).max()),
                rel_err(updates[name], ref_svd))

    def test_float32_matches_oracles_tightly(self):
        updates = self.one_step("float32")
        worst = np.zeros(4)
        for name in self.SPECS:
            e = np.array(self.errors(updates, name))
            worst = np.maximum(worst, e)
            self.assertLess(e[0], 1e-4, f"{name}: vs float64 iteration")
            self.assertLess(e[1], 1e-4, f"{name}: vs U f(S) V^T")
            self.assertLess(e[2], 1e-4, f"{name}: per-direction gains vs f(s)")
        measured(f"float32 (singular values over 3 decades, 4 params/schedules): max |update - "
                 f"float64 iteration| = {worst[0]:.1e}, max |update - U f(S) V^T| = "
                 f"{worst[1]:.1e}, max gain error = {worst[2]:.1e}")

    def test_bfloat16_matches_oracles_loosely(self):
        # bf16 has a noise floor near s ~ 1e-3 (NS reference, 9.5): use two decades here.
        self.build(decades=2.0)
        updates = self.one_step("bfloat16")
        worst = np.zeros(4)
        for name, (shape, coeffs, delta) in self.SPECS.items():
            e = np.array(self.errors(updates, name))
            worst = np.maximum(worst, e)
            self.assertLess(e[3], 0.1, f"{name}: relative error vs U f(S) V^T")
            self.assertLess(e[2], 0.15, f"{name}: per-direction gains vs f(s)")
            # Its own schedule, not another's: much further from what KJ x5 would give.
            if list(coeffs) != [KJ] * 5:
                G = np.asarray(self.grads[name], np.float32).astype(np.float64)
                other = rel_err(updates[name], oracle_svd(G, [KJ] * 5))
                self.assertGreater(other, 3 * e[3], f"{name}: does not follow its schedule")
        measured(f"bfloat16 (singular values over 2 decades): max relative Frobenius error vs "
                 f"U f(S) V^T = {worst[3]:.3f}, max |update - U f(S) V^T| = {worst[1]:.3f}, "
                 f"max gain error = {worst[2]:.3f}")

    def test_float64_matches_svd_to_roundoff(self):
        self.build(param_dtype=torch.float64)
        updates = self.one_step("float64")
        worst = max(max(self.errors(updates, n)[:3]) for n in self.SPECS)
        self.assertLess(worst, 1e-10)
        measured(f"float64: max deviation from both oracles = {worst:.1e}")

    def test_schedule_matters(self):
        """Sanity of the oracle itself: the four schedules give clearly different updates."""
        G = self.grads["blocks.1.attn.o.weight"]
        outs = [oracle_svd(G, c) for c in ([KJ] * 5, PE[:6], YOU6, [CUBIC] * 5)]
        for i in range(4):
            for j in range(i):
                self.assertGreater(rel_err(outs[i], outs[j]), 0.05)

    def test_lr_shape_adjustment(self):
        plain = self.one_step("float32", "none")
        self.build()
        scaled = self.one_step("float32", "original")
        for name, (shape, _, _) in self.SPECS.items():
            m, n = shape[0], int(np.prod(shape[1:]))
            factor = math.sqrt(max(1.0, m / n))
            np.testing.assert_allclose(scaled[name], factor * plain[name], rtol=1e-5, atol=1e-7)
        self.assertAlmostEqual(mt.adjusted_lr(0.1, "match_rms_adamw", (16, 64)), 0.1 * 0.2 * 8)

    def test_momentum_nesterov_and_weight_decay(self):
        """Two steps: EMA momentum, Nesterov input, decoupled weight decay, against numpy."""
        name = "blocks.0.mlp.up.weight"
        shape, coeffs, delta = self.SPECS[name]
        rng = np.random.default_rng(3)
        W0 = rng.standard_normal(shape)
        g1, g2 = rng.standard_normal(shape), rng.standard_normal(shape)
        p = torch.tensor(W0, dtype=torch.float32, requires_grad=True)
        lr, mu, wd = 0.05, 0.9, 0.1
        opt = mt.Muon([(name, p)], {"format": "muspec.ns_config", "version": 1,
                                    "parameters": {name: entry(coeffs, delta=delta)}},
                      lr=lr, momentum=mu, nesterov=True, weight_decay=wd, ns_dtype="float32")
        W = W0.astype(np.float32).astype(np.float64)
        buf = np.zeros(shape)
        scale = math.sqrt(max(1.0, shape[0] / shape[1]))
        for g in (g1, g2):
            p.grad = torch.tensor(g, dtype=torch.float32)
            opt.step()
            g = g.astype(np.float32).astype(np.float64)
            buf = mu * buf + (1 - mu) * g
            ns_in = (1 - mu) * g + mu * buf
            W = W * (1 - lr * wd) - lr * scale * oracle_svd(ns_in, coeffs, delta)
        self.assertLess(float(np.abs(p.detach().double().numpy() - W).max()), 1e-5)

    def test_groups_carry_schedules_and_state_dict_round_trips(self):
        opt = mt.Muon(self.params, self.config, ns_dtype="float32")
        self.assertEqual(len(opt.param_groups), 4)
        by_name = {g["param_names"][0]: g for g in opt.param_groups}
        g = by_name["blocks.0.mlp.up.weight"]
        self.assertEqual(g["ns_steps"], 6)
        self.assertEqual(g["ns_coefficients"][0], list(PE[0]))
        self.assertAlmostEqual(g["ns_delta"], 0.01)
        self.assertEqual(g["ns_dtype"], "float32")
        sd = opt.state_dict()
        opt2 = mt.Muon(self.params, self.config)
        opt2.load_state_dict(sd)
        self.assertEqual(opt2.param_groups[1]["ns_coefficients"],
                         opt.param_groups[1]["ns_coefficients"])

    def test_stacked_matrices_get_their_own_ns(self):
        """A [3, 16, 24] stack that the config analysed as matrices=3 of [16, 24]: per-slice NS
        with per-slice norms, lr factor from the slice shape."""
        rng = np.random.default_rng(7)
        G = np.stack([matrix_with_spectrum(16, 24, np.logspace(0, -2, 16) * (i + 1), 20 + i)
                      for i in range(3)])
        p = torch.zeros(3, 16, 24, dtype=torch.float64, requires_grad=True)
        cfg = ns_config(parameters={"qkv_w": entry(PE[:5], shape=[16, 24], matrices=3)})
        opt = mt.Muon([("qkv_w", p)], cfg, lr=1.0, momentum=0.0, ns_dtype="float64")
        self.assertTrue(opt.param_groups[0]["ns_batched"])
        p.grad = torch.tensor(G)
        opt.step()
        for i in range(3):
            np.testing.assert_allclose(-p.detach()[i].numpy(), oracle_svd(G[i], PE[:5]),
                                       atol=1e-10)
        # without the matrices hint the tensor is flattened to 3 x 384 (KJ convention)
        q = torch.zeros(3, 16, 24, dtype=torch.float64, requires_grad=True)
        cfg2 = ns_config(parameters={"qkv_w": entry(PE[:5])})
        opt2 = mt.Muon([("qkv_w", q)], cfg2, lr=1.0, momentum=0.0, ns_dtype="float64",
                       adjust_lr="none")
        q.grad = torch.tensor(G)
        opt2.step()
        np.testing.assert_allclose(-q.detach().numpy().reshape(3, -1),
                                   oracle_svd(G.reshape(3, -1), PE[:5]), atol=1e-10)

    def test_fused_parts_shape(self):
        """A fused 2-D tensor analysed as parts (matrices > 1): the part shape is accepted with a
        warning (NS acts on the whole matrix); a wrong part shape is still a mismatch."""
        p = torch.zeros(24, 16, requires_grad=True)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            mt.map_parameters([("qkv.weight", p)], ns_config(parameters={
                "qkv.weight": entry([KJ], shape=[8, 16], matrices=3)}), select="all")
        self.assertTrue(any("3 matrices" in str(x.message) for x in w))
        with self.assertRaises(mt.MappingError):
            mt.map_parameters([("qkv.weight", p)], ns_config(parameters={
                "qkv.weight": entry([KJ], shape=[8, 12], matrices=3)}), select="all")

    def test_zero_gradient_gives_zero_update(self):
        p = torch.ones(4, 6, requires_grad=True)
        opt = mt.Muon([("w", p)], fallback="keller", ns_dtype="float32")
        p.grad = torch.zeros(4, 6)
        opt.step()
        self.assertTrue(torch.equal(p.detach(), torch.ones(4, 6)))


class _Block(torch.nn.Module if torch is not None else object):
    def __init__(self, h):
        super().__init__()
        self.q = torch.nn.Linear(h, h, bias=False)
        self.k = torch.nn.Linear(h, h, bias=False)
        self.norm = torch.nn.LayerNorm(h)


class _Net(torch.nn.Module if torch is not None else object):
    """embed / layers.{0..4}.{q,k,norm} / head: names like a small LM."""

    def __init__(self, h=8, n=5):
        super().__init__()
        self.embed = torch.nn.Embedding(16, h)
        self.layers = torch.nn.ModuleList([_Block(h) for _ in range(n)])
        self.head = torch.nn.Linear(h, 16, bias=False)


class _Wrap(torch.nn.Module if torch is not None else object):
    def __init__(self, inner, attr):
        super().__init__()
        setattr(self, attr, inner)


@unittest.skipIf(torch is None, "torch is not importable: muspec_torch tests skipped")
class TestNameMapping(unittest.TestCase):
    """(b) exact > pattern > default, prefix stripping, and mismatch errors."""

    def config(self, default=True):
        return ns_config(
            parameters={"layers.0.q.weight": entry([KJ] * 3, shape=[8, 8])},
            patterns=[
                {"regex": r"layers\.(\d+)\.q\.weight", "layers": [0, 1], "op_type": "q",
                 **entry(PE[:4])},
                {"regex": r"layers\.(\d+)\.(q|k)\.weight", "layers": [0, 3], **entry(PE[:6])},
            ],
            default=entry([KJ] * 5) if default else None)

    def sources(self, mapping):
        return {a.canonical: (a.source, a.schedule.steps) for a in mapping.assignments}

    def test_precedence(self):
        m = mt.map_parameters(_Net(), self.config())
        s = self.sources(m)
        self.assertEqual(s["layers.0.q.weight"], ("exact", 3))
        self.assertEqual(s["layers.1.q.weight"], ("pattern[0]", 4))
        self.assertEqual(s["layers.2.q.weight"], ("pattern[1]", 6))   # outside [0, 1]
        self.assertEqual(s["layers.0.k.weight"], ("pattern[1]", 6))
        self.assertEqual(s["layers.3.k.weight"], ("pattern[1]", 6))
        self.assertEqual(s["layers.4.q.weight"], ("default", 5))      # outside [0, 3]
        self.assertEqual(s["layers.4.k.weight"], ("default", 5))
        # embeddings, head, LayerNorm parameters are not Muon's
        self.assertNotIn("embed.weight", s)
        self.assertNotIn("head.weight", s)
        self.assertEqual(len(s), 10)
        others = {n for n, _ in m.others}
        self.assertIn("embed.weight", others)
        self.assertIn("layers.0.norm.weight", others)
        self.assertIn("exact", m.summary())

    def test_listed_embedding_is_included(self):
        cfg = self.config()
        cfg["parameters"]["embed.weight"] = entry([KJ] * 2)
        s = self.sources(mt.map_parameters(_Net(), cfg))
        self.assertEqual(s["embed.weight"], ("exact", 2))

    def test_wrapper_prefixes_are_stripped(self):
        for wrapped in (_Wrap(_Net(), "module"), _Wrap(_Wrap(_Net(), "_orig_mod"), "module")):
            m = mt.map_parameters(wrapped, self.config())
            s = self.sources(m)
            self.assertEqual(s["layers.0.q.weight"], ("exact", 3))
            self.assertEqual(s["layers.1.q.weight"], ("pattern[0]", 4))
            self.assertTrue(m.assignments[0].name.startswith("module."))
        # prefixes on the config side too
        cfg = self.config()
        cfg["parameters"] = {"_orig_mod.layers.0.q.weight":
                             cfg["parameters"]["layers.0.q.weight"]}
        self.assertEqual(self.sources(mt.map_parameters(_Net(), cfg))["layers.0.q.weight"],
                         ("exact", 3))

    def test_unknown_config_name_is_an_error_with_suggestion(self):
        cfg = self.config()
        cfg["parameters"]["layers.0.qq.weight"] = entry([KJ])
        cfg["parameters"]["totally.unrelated"] = entry([KJ])
        with self.assertRaises(mt.MappingError) as cm:
            mt.map_parameters(_Net(), cfg)
        msg = str(cm.exception)
        self.assertIn("layers.0.qq.weight", msg)
        self.assertIn("did you mean: layers.0.q.weight", msg)
        self.assertIn("totally.unrelated", msg)
        self.assertIn("<ns_config object>", msg)
        self.assertEqual(len(cm.exception.unknown_config_names), 2)

    def test_unassigned_parameters_without_default(self):
        with self.assertRaises(mt.MappingError) as cm:
            mt.map_parameters(_Net(), self.config(default=False))
        msg = str(cm.exception)
        self.assertIn("layers.4.q.weight", msg)
        self.assertIn("layers.4.k.weight", msg)
        self.assertIn("no default", msg)
        self.assertEqual(sorted(n for n, _ in cm.exception.unassigned),
                         ["layers.4.k.weight", "layers.4.q.weight"])
        # a fallback accepts them
        m = mt.map_parameters(_Net(), self.config(default=False), fallback="keller")
        self.assertEqual(self.sources(m)["layers.4.q.weight"], ("fallback", 5))
        # and the optimizer raises the same error without one
        with self.assertRaises(mt.MappingError):
            mt.Muon(_Net(), self.config(default=False))

    def test_shape_mismatch(self):
        cfg = self.config()
        cfg["parameters"]["layers.0.q.weight"]["shape"] = [8, 16]
        with self.assertRaises(mt.MappingError) as cm:
            mt.map_parameters(_Net(), cfg)
        msg = str(cm.exception)
        self.assertIn("layers.0.q.weight: config shape [8, 16], model shape [8, 8]", msg)
        mt.map_parameters(_Net(), cfg, check_shapes=False)

    def test_flattened_shape_is_accepted_for_4d(self):
        conv = torch.nn.Conv2d(3, 8, 3)
        cfg = ns_config(parameters={"weight": entry([KJ], shape=[8, 27])})
        m = mt.map_parameters([("weight", conv.weight)], cfg, select="all")
        self.assertEqual(m.assignments[0].source, "exact")

    def test_vector_listed_for_muon_is_an_error(self):
        cfg = self.config()
        cfg["parameters"]["layers.0.norm.weight"] = entry([KJ])
        with self.assertRaises(mt.MappingError) as cm:
            mt.map_parameters(_Net(), cfg)
        self.assertIn("layers.0.norm.weight: shape [8]", str(cm.exception))

    def test_unused_pattern_warns(self):
        cfg = self.config()
        cfg["patterns"].append({"regex": r"blocks\.(\d+)\.w", "layers": [0, 9], **entry([KJ])})
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            mt.map_parameters(_Net(), cfg)
        self.assertTrue(any(issubclass(x.category, mt.UnusedPatternWarning)
                            and "patterns[2]" in str(x.message) for x in w))

    def test_duplicate_names_after_stripping(self):
        p = torch.zeros(2, 2)
        with self.assertRaises(mt.MappingError):
            mt.map_parameters([("module.w", p), ("w", p)], None, fallback="keller")


@unittest.skipIf(torch is None, "torch is not importable: muspec_torch tests skipped")
class TestConfigValidation(unittest.TestCase):
    """(c) malformed configs are rejected with the file and the field named."""

    def good(self):
        return ns_config(parameters={"a.weight": entry(PE[:3], shape=[4, 4], op_type="q",
                                                       layer=0, lower_bound=0.01,
                                                       bound_kind="measured", flops=1.0,
                                                       default_flops=2.0)},
                         patterns=[{"regex": r"l\.(\d+)\.w", "layers": [0, 3], **entry([KJ])}],
                         default=entry([KJ] * 5))

    def load_file(self, doc, raw=None):
        d = tempfile.mkdtemp()
        path = os.path.join(d, "ns_config.json")
        with open(path, "w") as f:
            f.write(raw if raw is not None else json.dumps(doc))
        return mt.load_ns_config(path), path

    def expect(self, mutate, *fragments):
        doc = self.good()
        mutate(doc)
        d = tempfile.mkdtemp()
        path = os.path.join(d, "ns_config.json")
        with open(path, "w") as f:
            json.dump(doc, f)
        with self.assertRaises(mt.ConfigError) as cm:
            mt.load_ns_config(path)
        msg = str(cm.exception)
        self.assertIn(path, msg)
        for frag in fragments:
            self.assertIn(frag, msg)
        return msg

    def test_good_config_and_unknown_fields(self):
        doc = self.good()
        doc["future_field"] = {"x": 1}
        doc["parameters"]["a.weight"]["another_new_field"] = [1, 2]
        doc["patterns"][0]["new"] = True
        cfg, _ = self.load_file(doc)
        self.assertEqual(cfg.parameters["a.weight"].schedule.steps, 3)
        self.assertEqual(cfg.parameters["a.weight"].shape, (4, 4))
        self.assertEqual(cfg.provenance["family"], "polar-express")
        self.assertEqual(cfg.default.schedule, mt.Schedule.keller())
        doc["default"] = None
        cfg, _ = self.load_file(doc)
        self.assertIsNone(cfg.default)
        del doc["default"]
        self.assertIsNone(self.load_file(doc)[0].default)

    def test_format_and_version(self):
        self.expect(lambda d: d.update(format="muspec.laws"), "format", "muspec.ns_config")
        self.expect(lambda d: d.update(version=2), "version", "unsupported version 2")
        self.expect(lambda d: d.pop("version"), "version")
        self.expect(lambda d: d.update(version=True), "version")

    def test_steps_and_coefficients(self):
        P = 'parameters["a.weight"]'
        self.expect(lambda d: d["parameters"]["a.weight"].update(steps=4),
                    f"{P}.coefficients", "exactly steps=4 triples, got 3")
        self.expect(lambda d: d["parameters"]["a.weight"].pop("steps"), f"{P}.steps")
        self.expect(lambda d: d["parameters"]["a.weight"].update(steps=0), f"{P}.steps")
        self.expect(lambda d: d["parameters"]["a.weight"].update(steps=2.0), f"{P}.steps")
        self.expect(lambda d: d["parameters"]["a.weight"]["coefficients"].__setitem__(1, [1, 2]),
                    f"{P}.coefficients[1]", "3 numbers")
        self.expect(lambda d: d["parameters"]["a.weight"]["coefficients"][2].__setitem__(
            1, "x"), f"{P}.coefficients[2][1]", "expected a number")
        self.expect(lambda d: d["parameters"]["a.weight"]["coefficients"][0].__setitem__(
            0, True), f"{P}.coefficients[0][0]")
        self.expect(lambda d: d["default"]["coefficients"].pop(), "default.coefficients")
        self.expect(lambda d: d["patterns"][0].update(coefficients="KJ"),
                    "patterns[0].coefficients")

    def test_non_finite_coefficients(self):
        doc = self.good()
        raw = json.dumps(doc).replace("8.20516", "NaN", 1)
        with self.assertRaises(mt.ConfigError) as cm:
            self.load_file(None, raw)
        self.assertIn("ns_config.json", str(cm.exception))
        self.assertIn("NaN", str(cm.exception))
        # a parsed dict with inf (which JSON cannot hold, but Python dicts can)
        doc["parameters"]["a.weight"]["coefficients"][0][0] = float("inf")
        with self.assertRaises(mt.ConfigError) as cm:
            mt.load_ns_config(doc)
        self.assertIn("coefficients[0][0]", str(cm.exception))
        self.assertIn("finite", str(cm.exception))

    def test_normalization_shape_and_types(self):
        P = 'parameters["a.weight"]'
        self.expect(lambda d: d["parameters"]["a.weight"]["normalization"].update(delta=-0.1),
                    f"{P}.normalization.delta")
        self.expect(lambda d: d["parameters"]["a.weight"]["normalization"].update(epsilon="1"),
                    f"{P}.normalization.epsilon")
        self.expect(lambda d: d["parameters"]["a.weight"].update(shape=[4]), f"{P}.shape")
        self.expect(lambda d: d["parameters"]["a.weight"].update(shape=[4, -1]), f"{P}.shape")
        self.expect(lambda d: d["parameters"]["a.weight"].update(layer="0"), f"{P}.layer")
        self.expect(lambda d: d.update(parameters=[1]), "parameters", "object")
        self.expect(lambda d: d["parameters"].update({"b": 5}), 'parameters["b"]')

    def test_patterns(self):
        self.expect(lambda d: d["patterns"][0].update(regex="l\\.(\\d+"), "patterns[0].regex",
                    "invalid regular expression")
        self.expect(lambda d: d["patterns"][0].update(regex=r"l\.\d+\.w"), "patterns[0].regex",
                    "no capture group")
        self.expect(lambda d: d["patterns"][0].update(layers=[3, 1]), "patterns[0].layers")
        self.expect(lambda d: d["patterns"][0].update(layers=[0]), "patterns[0].layers")
        self.expect(lambda d: d.update(patterns={}), "patterns", "list")

    def test_empty_and_duplicate(self):
        self.expect(lambda d: d.update(parameters={}, patterns=[], default=None),
                    "assigns no schedule")
        self.expect(lambda d: d["parameters"].update({"module.a.weight": entry([KJ])}),
                    "module.a.weight", "duplicates")

    def test_invalid_json_and_missing_file(self):
        with self.assertRaises(mt.ConfigError) as cm:
            self.load_file(None, '{"format": "muspec.ns_config", ')
        self.assertIn("invalid JSON at line 1", str(cm.exception))
        with self.assertRaises(mt.ConfigError) as cm:
            mt.load_ns_config("/nonexistent/ns_config.json")
        self.assertIn("/nonexistent/ns_config.json", str(cm.exception))

    def test_hostile_files_are_config_errors(self):
        """Whatever the bytes, the loader raises ConfigError naming the file (never another
        exception type): bad UTF-8, deep nesting, an over-long integer, a regex whose repeat
        count overflows, a zero gain at zero, a steps count over muspec's limit."""
        digits = "9" * 5000
        hostile = {
            "bad utf-8": b'{"format": "muspec.ns_config\xff"}',
            "deep nesting": ("[" * 100000 + "]" * 100000).encode(),
            "long integer": ('{"format": "muspec.ns_config", "version": ' + digits + "}").encode(),
        }
        for what, raw in hostile.items():
            d = tempfile.mkdtemp()
            path = os.path.join(d, "ns_config.json")
            with open(path, "wb") as f:
                f.write(raw)
            with self.assertRaises(mt.ConfigError, msg=what) as cm:
                mt.load_ns_config(path)
            self.assertIn(path, str(cm.exception), what)
        self.expect(lambda d: d["patterns"][0].update(regex="l\\.(\\d+){99999999999}\\.w"),
                    "patterns[0].regex")
        self.expect(lambda d: d["parameters"]["a.weight"]["coefficients"][0].__setitem__(0, 0.0),
                    "coefficients[0][0]", "a must be > 0")
        self.expect(lambda d: d["default"].update(steps=100, coefficients=[list(KJ)] * 100),
                    "default.steps")


class _TinyMLP(torch.nn.Module if torch is not None else object):
    def __init__(self, d_in=32, h=64, d_out=8):
        super().__init__()
        self.layers = torch.nn.ModuleList([torch.nn.Linear(d_in, h), torch.nn.Linear(h, h),
                                           torch.nn.Linear(h, h)])
        self.head = torch.nn.Linear(h, d_out)

    def forward(self, x):
        for layer in self.layers:
            x = torch.relu(layer(x))
        return self.head(x)


def _train(config, steps=150, seed=0, ns_dtype="bfloat16"):
    """Full-batch regression on a fixed random teacher; Muon on hidden weights, AdamW on rest."""
    torch.manual_seed(1234)
    X = torch.randn(512, 32)
    teacher = torch.nn.Sequential(torch.nn.Linear(32, 48), torch.nn.Tanh(),
                                  torch.nn.Linear(48, 8))
    with torch.no_grad():
        Y = teacher(X) * 2.0
    torch.manual_seed(seed)
    model = _TinyMLP()
    mapping = mt.map_parameters(model, config)
    muon = mt.Muon(mapping, lr=0.02, momentum=0.95, ns_dtype=ns_dtype)
    adam = torch.optim.AdamW(mapping.other_parameters(), lr=3e-3, betas=(0.9, 0.95),
                             weight_decay=0.0)
    losses = []
    for _ in range(steps):
        loss = torch.nn.functional.mse_loss(model(X), Y)
        losses.append(float(loss))
        muon.zero_grad()
        adam.zero_grad()
        loss.backward()
        muon.step()
        adam.step()
    with torch.no_grad():
        losses.append(float(torch.nn.functional.mse_loss(model(X), Y)))
    return losses, model, mapping


@unittest.skipIf(torch is None, "torch is not importable: muspec_torch tests skipped")
class TestTinyTraining(unittest.TestCase):
    """(d) a recommended-style mixed config trains, about as well as the uniform default."""

    def test_mixed_schedules_train(self):
        mixed = ns_config(
            parameters={"layers.0.weight": entry(PE[:5], delta=0.01, shape=[64, 32])},
            patterns=[{"regex": r"layers\.(\d+)\.weight", "layers": [1, 1], **entry(PE[:6])},
                      {"regex": r"layers\.(\d+)\.weight", "layers": [2, 2], **entry([KJ] * 4)}])
        uniform = ns_config(default=entry([KJ] * 5))
        t0 = time.time()
        loss_mixed, model_mixed, mapping = _train(mixed)
        loss_default, model_default, _ = _train(uniform)
        elapsed = time.time() - t0
        self.assertEqual([a.source for a in mapping.assignments],
                         ["exact", "pattern[0]", "pattern[1]"])
        drop_mixed = loss_mixed[0] / loss_mixed[-1]
        drop_default = loss_default[0] / loss_default[-1]
        measured(f"tiny MLP (3x Muon 64-wide + AdamW head, 150 full-batch steps, bf16 NS): "
                 f"loss {loss_mixed[0]:.4f} -> {loss_mixed[-1]:.4f} (x{drop_mixed:.1f} lower) "
                 f"with PE5/PE6/KJ4 per layer; {loss_default[0]:.4f} -> {loss_default[-1]:.4f} "
                 f"(x{drop_default:.1f}) with KJx5 everywhere; both runs {elapsed:.1f} s")
        self.assertEqual(loss_mixed[0], loss_default[0])         # same init and data
        self.assertGreater(drop_mixed, 10.0)
        self.assertGreater(drop_default, 10.0)
        self.assertLess(loss_mixed[-1], 2.0 * loss_default[-1])
        self.assertTrue(all(math.isfinite(v) for v in loss_mixed))
        # the schedules really differ in effect: the trained weights are not identical
        w1 = model_mixed.layers[0].weight.detach()
        w2 = model_default.layers[0].weight.detach()
        self.assertGreater(float((w1 - w2).abs().max()), 1e-3)


@unittest.skipIf(torch is None, "torch is not importable: muspec_torch tests skipped")
class TestTorchGroups(unittest.TestCase):
    """(e) torch.optim.Muon parameter groups from a muspec.torch_groups file."""

    def doc(self):
        return {"format": "muspec.torch_groups", "version": 1, "groups": [
            {"params": ["layers.0.q.weight", "layers.0.k.weight"], "ns_coefficients": list(KJ),
             "ns_steps": 5, "eps": 1e-7, "exact": True, "approximation": None},
            {"params": [f"layers.{i}.{t}.weight" for i in range(1, 5) for t in "qk"],
             "ns_coefficients": list(PE[3]), "ns_steps": 7, "eps": 1e-7, "exact": False,
             "approximation": "per-step Polar Express x6 replaced by its 4th triple x7",
             "future": 1},
        ]}

    def test_build_groups(self):
        net = _Net()
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            groups = mt.build_torch_muon_groups(_Wrap(net, "module"), self.doc(), lr=0.02,
                                                weight_decay=0.0, with_names=True)
        self.assertEqual(len(groups), 2)
        self.assertIs(groups[0]["params"][0], net.layers[0].q.weight)
        self.assertEqual(groups[0]["ns_coefficients"], KJ)
        self.assertEqual(groups[1]["ns_steps"], 7)
        self.assertEqual(groups[1]["eps"], 1e-7)
        self.assertEqual(groups[0]["lr"], 0.02)
        self.assertEqual(groups[0]["param_names"][0], "module.layers.0.q.weight")
        self.assertEqual(len(groups[1]["params"]), 8)
        self.assertTrue(any(issubclass(x.category, mt.InexactScheduleWarning)
                            and "groups[1]" in str(x.message) for x in w))

    def test_errors(self):
        doc = self.doc()
        doc["groups"][0]["params"].append("layers.0.qq.weight")
        doc["groups"][0]["params"].append("layers.0.norm.weight")
        with self.assertRaises(mt.MappingError) as cm:
            mt.build_torch_muon_groups(_Net(), doc, warn_inexact=False)
        msg = str(cm.exception)
        self.assertIn("layers.0.qq.weight (did you mean: layers.0.q.weight", msg)
        self.assertIn("layers.0.norm.weight: shape [8]", msg)
        doc = self.doc()
        doc["groups"][1]["params"].remove("layers.4.k.weight")
        with self.assertRaises(mt.MappingError) as cm:
            mt.build_torch_muon_groups(_Net(), doc, warn_inexact=False)
        self.assertIn("layers.4.k.weight", str(cm.exception))
        groups = mt.build_torch_muon_groups(_Net(), doc, strict=False, warn_inexact=False)
        self.assertEqual(len(groups[1]["params"]), 7)
        with self.assertRaises(TypeError):
            mt.build_torch_muon_groups(_Net(), self.doc(), ns_steps=3)

    def test_group_patterns(self):
        """Groups may carry 'patterns' (regex + layers) for names not expanded literally."""
        doc = self.doc()
        doc["groups"][1]["params"] = []
        doc["groups"][1]["patterns"] = [{"regex": r"layers\.(\d+)\.(q|k)\.weight",
                                         "layers": [1, 3]}]
        doc["groups"].append({"patterns": [{"regex": r"layers\.(\d+)\.[qk]\.weight",
                                            "layers": [0, 9]}],
                              "ns_coefficients": list(KJ), "ns_steps": 6, "eps": 1e-7,
                              "exact": True, "requirement_met": True})
        groups = mt.build_torch_muon_groups(_Wrap(_Net(), "_orig_mod"), doc, with_names=True,
                                            warn_inexact=False)
        self.assertEqual(groups[0]["param_names"],
                         ["_orig_mod.layers.0.q.weight", "_orig_mod.layers.0.k.weight"])
        self.assertEqual(len(groups[1]["params"]), 6)              # layers 1-3, q and k
        self.assertEqual(groups[2]["param_names"],
                         ["_orig_mod.layers.4.q.weight", "_orig_mod.layers.4.k.weight"])
        doc["groups"][2]["patterns"][0]["layers"] = [5, 2]
        with self.assertRaises(mt.ConfigError) as cm:
            mt.load_torch_groups(doc)
        self.assertIn("groups[2].patterns[0].layers", str(cm.exception))

    def test_validation(self):
        for mutate, frag in [
                (lambda d: d.update(format="muspec.ns_config"), "format"),
                (lambda d: d["groups"][0].update(ns_coefficients=[1, 2]),
                 "groups[0].ns_coefficients"),
                (lambda d: d["groups"][1].update(ns_steps=100), "groups[1].ns_steps"),
                (lambda d: d["groups"][1].update(exact="no"), "groups[1].exact"),
                (lambda d: d["groups"][1]["params"].append("layers.0.q.weight"),
                 "already in groups[0]"),
                (lambda d: d.update(groups=[]), "groups")]:
            doc = self.doc()
            mutate(doc)
            with self.assertRaises(mt.ConfigError) as cm:
                mt.load_torch_groups(doc)
            self.assertIn(frag, str(cm.exception))

    def test_from_uniform_ns_config(self):
        cfg = ns_config(parameters={"layers.0.q.weight": entry([KJ] * 3)},
                        default=entry([KJ] * 5))
        groups = mt.build_torch_muon_groups(_Net(), cfg)
        self.assertEqual(sorted(g["ns_steps"] for g in groups), [3, 5])
        self.assertEqual(sum(len(g["params"]) for g in groups), 10)
        cfg["parameters"]["layers.0.q.weight"] = entry(PE[:3])
        with self.assertRaises(mt.ConfigError) as cm:
            mt.build_torch_muon_groups(_Net(), cfg)
        self.assertIn("layers.0.q.weight", str(cm.exception))

    def test_torch_muon_param_groups(self):
        net = _Net()
        if not mt.torch_muon_available():
            with self.assertRaises(RuntimeError) as cm:
                mt.torch_muon_param_groups(net, self.doc())
            self.assertIn(torch.__version__, str(cm.exception))
            self.assertIn("2.9", str(cm.exception))
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mt.InexactScheduleWarning)
            groups = mt.torch_muon_param_groups(net, self.doc(), lr=0.02, weight_decay=0.0)
            with self.assertRaises(TypeError):
                mt.torch_muon_param_groups(net, self.doc(), not_an_option=1)
        opt = torch.optim.Muon(groups)
        self.assertEqual(opt.param_groups[1]["ns_steps"], 7)
        for p in net.parameters():
            p.grad = torch.randn_like(p)
        before = net.layers[0].q.weight.detach().clone()
        opt.step()
        self.assertFalse(torch.equal(before, net.layers[0].q.weight.detach()))


@unittest.skipIf(torch is None or not hasattr(torch.optim, "Muon"),
                 "torch.optim.Muon is not in this torch (needs PyTorch >= 2.9)")
class TestAgainstTorchMuon(unittest.TestCase):
    """With a uniform KJ x5 schedule, muspec_torch.Muon reproduces torch.optim.Muon."""

    def test_same_steps_as_torch_muon(self):
        torch.manual_seed(0)
        shapes = [(48, 32), (32, 80), (64, 64)]
        ours = [torch.randn(s, requires_grad=True) for s in shapes]
        theirs = [p.detach().clone().requires_grad_(True) for p in ours]
        cfg = ns_config(default=entry([KJ] * 5))
        kw = dict(lr=0.02, momentum=0.95, nesterov=True, weight_decay=0.1)
        opt_a = mt.Muon([(f"w{i}", p) for i, p in enumerate(ours)], cfg, ns_dtype="bfloat16",
                        **kw)
        opt_b = torch.optim.Muon(theirs, ns_coefficients=KJ, ns_steps=5, eps=1e-7, **kw)
        worst = 0.0
        for _ in range(3):
            for a, b in zip(ours, theirs):
                g = torch.randn_like(a)
                a.grad, b.grad = g.clone(), g.clone()
            opt_a.step()
            opt_b.step()
        for a, b in zip(ours, theirs):
            worst = max(worst, float((a - b).abs().max()))
        # 3 steps of lr 0.02 move entries by ~0.02-0.06; bf16 rounding of the norm differs
        # (torch.optim.Muon divides by a bf16 norm, we by a float32 one).
        self.assertLess(worst, 2e-3)
        measured(f"vs torch.optim.Muon {torch.__version__} (KJ x5, bf16, 3 steps, lr 0.02): "
                 f"max parameter difference {worst:.1e}")


@unittest.skipIf(torch is None or not torch.cuda.is_available(), "no CUDA device")
class TestCuda(unittest.TestCase):
    """The optimizer runs on a GPU and still applies the configured polynomials."""

    def test_cuda_float32_and_bf16(self):
        t = TestOptimizerAppliesSchedules()
        for ns_dtype, tol in (("float32", 1e-4), ("bfloat16", 0.1)):
            t.build(decades=3.0 if ns_dtype == "float32" else 2.0)
            t.params = [(n, p.detach().cuda().requires_grad_(True)) for n, p in t.params]
            updates = t.one_step(ns_dtype)
            worst = 0.0
            for name in t.SPECS:
                e = t.errors({k: v for k, v in updates.items()}, name)
                worst = max(worst, e[1] if ns_dtype == "float32" else e[3])
            self.assertLess(worst, tol)
            measured(f"CUDA {torch.cuda.get_device_name()} {ns_dtype}: "
                     f"{'max abs' if ns_dtype == 'float32' else 'max relative'} error vs "
                     f"U f(S) V^T = {worst:.1e}")


@unittest.skipIf(torch is None, "torch is not importable: muspec_torch tests skipped")
class TestExampleConfig(unittest.TestCase):
    """The committed docs/examples/ns_config.json maps onto the sample runs' parameter names."""

    def test_example_config_maps_onto_sample_model(self):
        path = os.path.join(ROOT, "docs", "examples", "ns_config.json")
        if not os.path.exists(path):
            self.skipTest(f"{path} is not committed yet")
        cfg = mt.load_ns_config(path)
        manifests = sorted(glob.glob(os.path.join(ROOT, "sample_data", "runs", "*",
                                                  "muspec-run.json")))
        if not manifests:
            self.skipTest("sample_data/runs/*/muspec-run.json not found")
        errors, ok = [], []
        for man in manifests:
            with open(man) as f:
                run = json.load(f)
            named = [(n, torch.zeros(s)) for n, s in zip(run["param_order"],
                                                         run["param_shapes"])]
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", mt.UnusedPatternWarning)
                    mapping = mt.map_parameters(named, cfg)
            except mt.MappingError as e:
                errors.append(f"{run['run']}: {e}")
                continue
            ok.append(run["run"])
            self.assertGreater(len(mapping.assignments), 0)
            for a in mapping.assignments:
                self.assertEqual(a.param.dim(), 2)
        self.assertTrue(ok, "example config maps onto no sample run:\n" + "\n".join(errors))
        measured(f"docs/examples/ns_config.json maps onto sample runs {ok}")


@unittest.skipIf(torch is None, "torch is not importable: muspec_torch tests skipped")
class TestRecommendedConfigTrains(unittest.TestCase):
    """The loop closed: docs/examples/ns_config.json, written by `muspec recommend` from the d80
    sample run's momentum spectra, drives muspec_torch.Muon on the same Llama-style model
    (tools/python/train_tiny_gpt.py), which trains like the uniform Keller x5 default."""

    def _train(self, cfg, steps=60):
        import train_tiny_gpt as tg
        torch.manual_seed(1080)
        h, layers = 80, 4
        model = tg.LlamaForCausalLM(h, layers, h // tg.HEAD_DIM, tg.intermediate_size(h))
        mapping = mt.map_parameters(model, cfg)
        muon = mt.Muon(mapping, lr=0.02, momentum=0.95, ns_dtype="bfloat16")
        adam = torch.optim.AdamW(mapping.other_parameters(), lr=3e-3, betas=(0.9, 0.95))
        if os.path.isdir(tg.CORPUS_DIR):
            corpus, _ = tg.load_corpus()
        else:  # not Debian: any fixed text will do
            corpus = open(os.path.join(ROOT, "README.md"), "rb").read() * 4
        data = torch.frombuffer(bytearray(corpus), dtype=torch.uint8)
        gen = torch.Generator().manual_seed(tg.DATA_SEED)
        losses = []
        for _ in range(steps):
            x, y = tg.get_batch(data, gen)
            loss = torch.nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())
            losses.append(float(loss))
            muon.zero_grad()
            adam.zero_grad()
            loss.backward()
            muon.step()
            adam.step()
        return losses, mapping

    def test_recommended_config_trains(self):
        path = os.path.join(ROOT, "docs", "examples", "ns_config.json")
        if not os.path.exists(path):
            self.skipTest(f"{path} is not committed yet")
        cfg = mt.load_ns_config(path)
        uniform = mt.load_ns_config({"format": "muspec.ns_config", "version": 1,
                                     "default": entry([KJ] * 5), "parameters": {}})
        torch.set_num_threads(1)
        t0 = time.time()
        rec, mapping = self._train(cfg)
        base, _ = self._train(uniform)
        elapsed = time.time() - t0
        steps = sorted({a.schedule.steps for a in mapping.assignments})
        self.assertTrue(all(a.source == "exact" for a in mapping.assignments))
        self.assertGreater(len(steps), 1, "the recommended config should give layers different step counts")
        first, last = sum(rec[:5]) / 5, sum(rec[-5:]) / 5
        base_last = sum(base[-5:]) / 5
        measured(f"d80 Llama-style LM, 60 steps, recommended config (NS steps {steps}): loss "
                 f"{first:.3f} -> {last:.3f}; uniform keller x5: {sum(base[:5]) / 5:.3f} -> "
                 f"{base_last:.3f}; both runs {elapsed:.1f} s")
        self.assertTrue(all(math.isfinite(v) for v in rec))
        self.assertLess(last, first - 1.5)           # byte-level LM: from ~5.5 nats down a lot
        self.assertLess(last, 1.1 * base_last)       # and about as well as the uniform default


if __name__ == "__main__":
    unittest.main()


@unittest.skipIf(torch is None, "torch is not importable: muspec_torch tests skipped")
class TestBf16Arithmetic(unittest.TestCase):
    """bf16 NS applies the *configured* coefficients: scalars in float32, bf16 storage."""

    def run_ns(self, G, coeffs, device="cpu"):
        sched = mt.Schedule(steps=len(coeffs), coefficients=tuple(tuple(c) for c in coeffs), delta=0.0, epsilon=1e-7)
        X = mt.newton_schulz(torch.tensor(G, dtype=torch.float32, device=device), sched, "bfloat16")
        return X.double().cpu().numpy()

    def test_a_coefficient_that_bf16_cannot_hold_is_applied_exactly(self):
        # a = 1.02 is 1.0234375 in bf16: ten steps of a*X differ by 3.5% (1.02^10 vs 1.0234^10).
        # Rounding X to bf16 after each step adds up to 1.8% here (measured); a bf16 coefficient
        # gives 3.8%. The float64 oracle is the configured map.
        G = np.diag(np.linspace(0.2, 1.0, 8))
        coeffs = [(1.02, 0.0, 0.0)] * 10
        got = np.sort(np.linalg.svd(self.run_ns(G, coeffs), compute_uv=False))
        want = np.sort(np.linalg.svd(oracle_svd(G, coeffs), compute_uv=False))
        self.assertLess(np.max(np.abs(got / want - 1)), 0.025)
        rounded = float(torch.tensor(1.02, dtype=torch.bfloat16))
        self.assertGreater(abs(rounded ** 10 / 1.02 ** 10 - 1), 0.03)  # the test can tell them apart

    def test_keller_quintic_in_bf16_matches_the_float64_polynomial(self):
        for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
            G = matrix_with_spectrum(48, 96, np.geomspace(1e-2, 1.0, 48), seed=3)
            coeffs = [mt.KELLER_COEFFICIENTS] * 5
            got = self.run_ns(G, coeffs, device)
            want = oracle_svd(G, coeffs)
            # bf16 storage with float32 scalars: 3.1% from the float64 polynomial on the CPU
            # (measured); with the coefficients rounded to bf16 it was 4.9%.
            self.assertLess(rel_err(got, want), 0.04, device)
