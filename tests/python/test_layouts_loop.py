"""The whole loop on checkpoints written by ordinary PyTorch training code, with no flags and no
manifest: `muspec scan` -> `fit` / `recommend` / `plan` -> muspec_torch maps the config onto the
same model classes that wrote the checkpoints (tests/fixtures/make_layout_fixtures.py).

Needs the muspec binary (MUSPEC_BINARY, set by ctest); skipped without it.
"""
import importlib.util
import json
import os
import pathlib
import subprocess
import tempfile
import unittest
import warnings

import torch

import muspec_torch

ROOT = pathlib.Path(__file__).resolve().parents[2]
LAYOUTS = ROOT / "tests" / "fixtures" / "layouts"
BINARY = os.environ.get("MUSPEC_BINARY", "")


def load_fixture_module():
    spec = importlib.util.spec_from_file_location("make_layout_fixtures", ROOT / "tests" / "fixtures" / "make_layout_fixtures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@unittest.skipUnless(BINARY and os.path.exists(BINARY), "MUSPEC_BINARY is not set (run through ctest)")
class LayoutLoopTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fx = load_fixture_module()
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = pathlib.Path(cls.tmp.name)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def muspec(self, *args):
        r = subprocess.run([BINARY, *map(str, args)], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, f"muspec {' '.join(map(str, args))}\n{r.stderr}")
        return r

    def recommend_for(self, layout, sub):
        h5 = self.dir / f"{layout}.h5"
        cfg = self.dir / f"{layout}.ns_config.json"
        self.muspec("scan", LAYOUTS / layout / sub, "-o", h5, "-q")
        self.muspec("recommend", "--spectra", h5, "-o", cfg)
        return h5, cfg

    def test_gpt2_conv1d_config_maps_onto_the_conv1d_model(self):
        _, cfg = self.recommend_for("gpt2_conv1d", "run")
        entries = json.loads(cfg.read_text())["parameters"]
        c_fc = entries["transformer.h.0.mlp.c_fc.weight"]
        self.assertEqual(c_fc["storage"], "conv1d")
        model = self.fx.GPT(conv1d=True)
        self.assertEqual(list(model.transformer.h[0].mlp.c_fc.weight.shape), c_fc["shape"][::-1])
        mapping = muspec_torch.map_parameters(model, str(cfg))
        exact = {a.canonical for a in mapping.assignments if a.source == "exact"}
        self.assertEqual(exact, set(entries))  # every Conv1D matrix gets its own entry
        # One optimizer step on the real model: the update has the Conv1D weight's shape.
        opt = muspec_torch.Muon(model, str(cfg), lr=0.02)
        before = model.transformer.h[0].attn.c_attn.weight.detach().clone()
        model(torch.randint(0, self.fx.VOCAB, (2, self.fx.SEQ))).sum().backward()
        opt.step()
        self.assertFalse(torch.equal(before, model.transformer.h[0].attn.c_attn.weight))

    def test_expert_banks_get_per_expert_ns_and_the_router_stays_off_muon(self):
        _, cfg = self.recommend_for("moe_bank", "run")
        entries = json.loads(cfg.read_text())["parameters"]
        bank = entries["model.layers.1.mlp.experts.down_proj"]
        self.assertEqual(bank["matrices"], 4)
        self.assertNotIn("model.layers.1.mlp.gate.weight", entries)
        model = self.fx.LlamaForCausalLM(moe=True)
        mapping = muspec_torch.map_parameters(model, str(cfg))
        by_name = {a.canonical: a for a in mapping.assignments}
        self.assertTrue(by_name["model.layers.1.mlp.experts.down_proj"].batched)
        self.assertNotIn("model.layers.1.mlp.gate.weight", by_name)
        # A plan on the same scan maps as well.
        plan = self.dir / "moe.plan.json"
        self.muspec("plan", "--spectra", self.dir / "moe_bank.h5", "--mean-steps", "4", "-o", plan)
        muspec_torch.map_parameters(model, str(plan))

    def test_bank_without_entry_is_orthogonalized_per_expert_with_one_warning(self):
        _, cfg = self.recommend_for("moe_bank", "run")
        raw = json.loads(cfg.read_text())
        del raw["parameters"]["model.layers.0.mlp.experts.up_proj"]
        del raw["parameters"]["model.layers.2.mlp.experts.up_proj"]
        model = self.fx.LlamaForCausalLM(moe=True)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            mapping = muspec_torch.map_parameters(model, raw)
        said = [x for x in w if issubclass(x.category, muspec_torch.DefaultScheduleWarning)]
        self.assertEqual(len(said), 1)
        self.assertIn("experts.up_proj", str(said[0].message))
        a = {x.canonical: x for x in mapping.assignments}["model.layers.0.mlp.experts.up_proj"]
        self.assertTrue(a.batched)

    def test_every_layout_recommends_and_maps_onto_its_model(self):
        models = {"kj_muon": lambda: self.fx.LlamaForCausalLM(kv_heads=1),
                  "torchtitan": self.fx.MetaLlama,
                  "hf_trainer": lambda: self.fx.LlamaForCausalLM(bias=True),
                  "plain_sgd": lambda: self.fx.LlamaForCausalLM(rotary_buffer=True),
                  "nanogpt": self.fx.GPT}
        subs = {"plain_sgd": ".", "nanogpt": "out"}
        for layout, make in models.items():
            with self.subTest(layout=layout):
                _, cfg = self.recommend_for(layout, subs.get(layout, "run"))
                entries = json.loads(cfg.read_text())["parameters"]
                self.assertTrue(entries)
                mapping = muspec_torch.map_parameters(make(), str(cfg))
                self.assertEqual({a.canonical for a in mapping.assignments if a.source == "exact"}, set(entries))

    def test_fit_on_a_nanogpt_size_sweep_needs_no_flags(self):
        h5 = self.dir / "sweep.h5"
        laws = self.dir / "laws.json"
        self.muspec("scan", LAYOUTS / "nanogpt_sweep", "-o", h5, "-q")
        self.muspec("fit", h5, "-o", laws, "-q")
        sizes = json.loads((LAYOUTS / "nanogpt_sweep" / "expected.json").read_text())["model_params"]
        fitted = json.loads(laws.read_text())
        self.assertEqual(fitted["kind"], "exp_avg")
        ok = [law for law in fitted["laws"] if law["status"] == "ok"]
        self.assertTrue(ok)
        lo, hi = ok[0]["params_range"]
        self.assertEqual((lo, hi), (min(sizes.values()), max(sizes.values())))


if __name__ == "__main__":
    unittest.main()
