"""A plan transfers to a deeper model: `muspec plan --by layer` on the largest sample run (4
blocks), written once per parameter and once as name patterns for a 10-block model
(`--transfer-layers 10 --depth-buckets 2`); muspec_torch maps the patterns onto a real 10-block
model of the same family (tools/python/train_tiny_gpt.py), and every Muon matrix must get the most
steps that the per-parameter plan gave its operator type in its relative-depth bucket.

The oracle is independent of muspec's C++: buckets from exact fractions, op types from the
parameter names, the per-parameter plan as written.

Needs the muspec binary (MUSPEC_BINARY, set by ctest); skipped without it.
"""
import json
import os
import pathlib
import subprocess
import tempfile
import unittest
from fractions import Fraction

import muspec_torch
import train_tiny_gpt

ROOT = pathlib.Path(__file__).resolve().parents[2]
RUN = ROOT / "sample_data" / "runs" / "d80"
BINARY = os.environ.get("MUSPEC_BINARY", "")
SOURCE_LAYERS, TARGET_LAYERS, BUCKETS = 4, 10, 2
OPS = {"q_proj": "q", "k_proj": "k", "v_proj": "v", "o_proj": "o", "gate_proj": "gate",
       "up_proj": "up", "down_proj": "down"}


def op_and_layer(name):
    parts = name.split(".")
    return OPS[parts[-2]], int(parts[parts.index("layers") + 1])


def bucket(layer, layers):
    rel = Fraction(layer, layers - 1) if layers > 1 else Fraction(0)
    return min(BUCKETS - 1, int(rel * BUCKETS))


def expected_by_bucket(plan):
    """(op, bucket) -> the per-parameter entry with the most steps (ties: smaller lower bound)."""
    best = {}
    for name, entry in plan["parameters"].items():
        op, layer = op_and_layer(name)
        key = (op, bucket(layer, SOURCE_LAYERS))
        cur = best.get(key)
        if cur is None or (entry["steps"], -entry["lower_bound"]) > (cur["steps"], -cur["lower_bound"]):
            best[key] = entry
    return best


@unittest.skipUnless(BINARY and os.path.exists(BINARY), "MUSPEC_BINARY is not set (run through ctest)")
class PlanTransferLoopTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = pathlib.Path(cls.tmp.name)
        h5 = d / "d80.h5"
        subprocess.run([BINARY, "scan", str(RUN / "checkpoint-300"), "-o", str(h5), "-q"], check=True,
                       capture_output=True)
        common = [BINARY, "plan", "--spectra", str(h5), "--by", "layer", "--mean-steps", "4", "-q"]
        subprocess.run(common + ["-o", str(d / "plan.json")], check=True, capture_output=True)
        r = subprocess.run(common + ["--transfer-layers", str(TARGET_LAYERS), "--depth-buckets", str(BUCKETS),
                                     "-o", str(d / "transfer.json")], capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError(r.stderr)
        cls.plan = json.loads((d / "plan.json").read_text())
        cls.transfer = json.loads((d / "transfer.json").read_text())

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_plan_differs_between_blocks(self):
        steps = {e["steps"] for e in self.plan["parameters"].values()}
        self.assertGreater(len(steps), 1, "a uniform plan would not test the aggregation")

    def test_transfer_has_patterns_only(self):
        self.assertEqual(self.transfer["parameters"], {})
        self.assertEqual(self.transfer["target"]["layers"], TARGET_LAYERS)
        self.assertGreater(len(self.transfer["patterns"]), 0)

    def test_every_matrix_of_the_deeper_model_gets_its_buckets_steps(self):
        h = 80
        model = train_tiny_gpt.LlamaForCausalLM(h, TARGET_LAYERS, h // train_tiny_gpt.HEAD_DIM,
                                                train_tiny_gpt.intermediate_size(h))
        mapping = muspec_torch.map_parameters(model, self.transfer)
        best = expected_by_bucket(self.plan)
        self.assertEqual(len(mapping.assignments), 7 * TARGET_LAYERS)
        for a in mapping.assignments:
            op, layer = op_and_layer(a.canonical)
            want = best[(op, bucket(layer, TARGET_LAYERS))]
            with self.subTest(name=a.canonical):
                self.assertTrue(a.source.startswith("pattern["), a.source)
                self.assertEqual(a.schedule.steps, want["steps"])
                self.assertEqual([list(c) for c in a.schedule.coefficients], want["coefficients"])


if __name__ == "__main__":
    unittest.main()
