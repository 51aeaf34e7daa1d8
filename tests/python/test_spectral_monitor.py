"""muspec_torch.SpectralMonitor on the tiny Llama model of tools/python/train_tiny_gpt.py: the
store it writes during training against `muspec scan` of checkpoints saved at the same steps
with torch.save (the same live float32 momentum buffers), down to `muspec recommend`'s output."""
import json
import os
import tempfile
import unittest

import numpy as np

from module_support import muspec, needs_cli, needs_module, run_cli

try:
    import torch
    import train_tiny_gpt as tiny
    from muspec_torch import SpectralMonitor
except ImportError:  # the runner skips the whole suite without torch
    torch = None

H, LAYERS, EVERY, STEPS = 16, 2, 20, 60
QUANTILES = [0.05, 0.5]


def train(run_dir, monitor_path):
    """Trains STEPS steps with a monitor; saves optimizer.pt (float32) every EVERY steps."""
    torch.manual_seed(7)
    torch.set_num_threads(1)
    model = tiny.LlamaForCausalLM(H, LAYERS, H // tiny.HEAD_DIM, tiny.intermediate_size(H))
    opt, order, _, _ = tiny.build_optimizer(model)
    os.makedirs(run_dir)
    with open(os.path.join(run_dir, "muspec-run.json"), "w") as f:
        json.dump({"run": "tiny", "params": tiny.count_params(model)[0], "layers": LAYERS, "param_order": order}, f)
    data = torch.frombuffer(bytearray(tiny.load_corpus()[0][:200000]), dtype=torch.uint8)
    gen = torch.Generator().manual_seed(1)
    losses = []
    with SpectralMonitor(opt, every=EVERY, path=monitor_path, model=model, run="tiny", quantiles=QUANTILES) as mon:
        for step in range(1, STEPS + 1):
            x, y = tiny.get_batch(data, gen)
            loss = torch.nn.functional.cross_entropy(model(x).view(-1, tiny.VOCAB), y.view(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            mon.step()
            losses.append(loss.item())
            if step % EVERY == 0:
                d = os.path.join(run_dir, f"checkpoint-{step}")
                os.makedirs(d)
                torch.save(opt.state_dict(), os.path.join(d, "optimizer.pt"))
    return mon, losses


@unittest.skipIf(torch is None, "torch is not installed")
@needs_module
@needs_cli
class MonitorAgainstCheckpoints(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        cls.monitor_h5, cls.scan_h5 = os.path.join(d, "monitor.h5"), os.path.join(d, "scan.h5")
        cls.mon, cls.losses = train(os.path.join(d, "tiny"), cls.monitor_h5)
        run_cli("scan", os.path.join(d, "tiny"), "-o", cls.scan_h5, "--kind", "momentum", "--quantiles", "0.05,0.5",
                "--quiet")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def frames(self):
        key = ["step", "parameter"]
        a, sa = muspec.read_spectra(self.monitor_h5, sigma=True)
        b, sb = muspec.read_spectra(self.scan_h5, sigma=True)
        a["sigma"], b["sigma"] = sa, sb
        return a.sort_values(key).reset_index(drop=True), b.sort_values(key).reset_index(drop=True)

    def test_same_matrices_labels_and_spectra(self):
        a, b = self.frames()
        self.assertEqual(len(a), 3 * 7 * LAYERS)  # 3 observations x 7 Muon matrices per block
        for col in ("step", "parameter", "kind", "op_type", "layer", "num_layers", "rel_depth", "muon", "rows",
                    "cols", "model_params", "run", "method"):
            self.assertEqual(list(a[col]), list(b[col]), col)
        for sa, sb in zip(a["sigma"], b["sigma"]):
            np.testing.assert_allclose(sa, sb, rtol=1e-10, atol=1e-12 * sb[-1])
        for col in ("sigma_max", "frobenius", "q0.05_rel_frob", "q0.5_rel_frob", "cond"):
            np.testing.assert_allclose(a[col], b[col], rtol=1e-9, err_msg=col)

    def test_recommend_gives_the_same_config(self):
        outs = []
        for h5 in (self.monitor_h5, self.scan_h5):
            out = h5 + ".ns_config.json"
            run_cli("recommend", "--spectra", h5, "--run", "tiny", "-o", out)
            with open(out) as f:
                cfg = json.load(f)
            cfg.pop("provenance", None)
            cfg.pop("command", None)
            cfg.pop("created", None)
            outs.append(cfg)
        self.assertEqual(outs[0], outs[1])

    def test_cost_report(self):
        r = self.mon.cost_report()
        self.assertEqual(r["observations"], STEPS // EVERY)
        self.assertEqual(r["matrices"], 3 * 7 * LAYERS)
        self.assertGreater(r["seconds_per_observation"], 0)
        self.assertGreater(r["seconds_per_step"], 0)
        self.assertIn("overhead", r["text"])
        self.assertLess(np.mean(self.losses[-10:]), np.mean(self.losses[:10]))  # it trained


if __name__ == "__main__":
    unittest.main()
