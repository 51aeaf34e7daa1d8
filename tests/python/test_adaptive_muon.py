"""muspec_torch.AdaptiveMuon (observe-then-commit) on the tiny Llama model of
tools/python/train_tiny_gpt.py: the plan it commits equals `muspec plan` on the spectra it
observed, it survives a state_dict round trip, and the loss falls like the uniform default's."""
import json
import os
import tempfile
import unittest

import numpy as np

from module_support import muspec, needs_cli, needs_module, run_cli

try:
    import torch
    import train_tiny_gpt as tiny
    from muspec_torch import AdaptiveMuon, Muon
except ImportError:  # the runner skips the whole suite without torch
    torch = None

H, LAYERS, WARMUP, STEPS, MEAN_STEPS = 16, 2, 20, 60, 3


def make_model():
    torch.manual_seed(11)
    return tiny.LlamaForCausalLM(H, LAYERS, H // tiny.HEAD_DIM, tiny.intermediate_size(H))


def train(model, muon, steps=STEPS):
    """Muon on the hidden matrices, AdamW on the rest; returns the losses."""
    torch.set_num_threads(1)
    adam = torch.optim.AdamW([p for _, p in muon.mapping.others], lr=3e-3, betas=(0.9, 0.95))
    data = torch.frombuffer(bytearray(tiny.load_corpus()[0][:200000]), dtype=torch.uint8)
    gen = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(steps):
        x, y = tiny.get_batch(data, gen)
        loss = torch.nn.functional.cross_entropy(model(x).view(-1, tiny.VOCAB), y.view(-1))
        muon.zero_grad(set_to_none=True)
        adam.zero_grad(set_to_none=True)
        loss.backward()
        muon.step()
        adam.step()
        losses.append(loss.item())
    return losses


def strip(cfg):
    cfg = json.loads(cfg) if isinstance(cfg, str) else cfg
    for k in ("provenance", "command", "created"):
        cfg.pop(k, None)
    return cfg


@unittest.skipIf(torch is None, "torch is not installed")
@needs_module
@needs_cli
class AdaptiveMuonTinyLlama(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.store = os.path.join(cls.tmp.name, "amo.h5")
        cls.model = make_model()
        cls.opt = AdaptiveMuon(cls.model, warmup=WARMUP, mean_steps=MEAN_STEPS, store=cls.store, run="tiny",
                               ns_dtype="float32")
        cls.losses = train(cls.model, cls.opt)
        base = make_model()
        cls.base_losses = train(base, Muon(base, None, fallback="keller", ns_dtype="float32"))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_commits_what_muspec_plan_gives(self):
        self.assertTrue(self.opt.amo["committed"])
        out = os.path.join(self.tmp.name, "plan.json")
        run_cli("plan", "--spectra", self.store, "--mean-steps", MEAN_STEPS, "--run", "tiny", "--kind", "momentum",
                "-o", out, "--quiet")
        with open(out) as f:
            cli = json.load(f)
        self.assertEqual(strip(self.opt.amo["config"]), strip(cli))
        self.assertEqual(strip(muspec.plan(self.store, mean_steps=MEAN_STEPS, run="tiny", kind="momentum")),
                         strip(cli))
        planned = {name: e["steps"] for name, e in cli["parameters"].items()}
        self.assertEqual(self.opt.decision(), planned)
        self.assertNotEqual(set(planned.values()), {5})  # a real allocation, not the default everywhere

    def test_state_dict_keeps_the_plan(self):
        model = make_model()
        model.load_state_dict(self.model.state_dict())
        resumed = AdaptiveMuon(model, warmup=WARMUP, mean_steps=MEAN_STEPS, run="tiny", ns_dtype="float32")
        resumed.load_state_dict(self.opt.state_dict())
        self.assertTrue(resumed.amo["committed"])
        self.assertEqual(resumed.decision(), self.opt.decision())
        train(model, resumed, steps=2)  # goes on with the committed plan, no second commit
        self.assertEqual(resumed.amo["steps"], STEPS + 2)
        resumed.close()

    def test_loss_falls_like_the_uniform_default(self):
        first, last = np.mean(self.losses[:5]), np.mean(self.losses[-10:])
        base_last = np.mean(self.base_losses[-10:])
        self.assertLess(last, first - 1.0)
        self.assertLess(abs(last - base_last), 0.1 * base_last, (last, base_last))


if __name__ == "__main__":
    unittest.main()
