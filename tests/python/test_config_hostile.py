"""Issue 14: hostile ns_config.json files give a ConfigError naming the file and the entry,
never an uncaught exception or a hang (tools/python/muspec_torch/config.py, safe_regex.py)."""

import json
import os
import tempfile
import time
import unittest

from muspec_torch import ConfigError, load_ns_config
from muspec_torch.safe_regex import MAX_NAME_LENGTH, regex_problem


def _config(**overrides):
    doc = {
        "format": "muspec.ns_config",
        "version": 1,
        "parameters": {},
        "patterns": [{"regex": r"(?:.*\.)?layers\.(\d+)\.mlp\.up_proj\.weight", "layers": [0, 3],
                      "steps": 2, "coefficients": [[3.0, -3.0, 1.0], [2.0, -1.5, 0.5]]}],
    }
    doc.update(overrides)
    return doc


class HostileConfigTest(unittest.TestCase):
    def write(self, doc_text):
        fd, path = tempfile.mkstemp(suffix=".json")
        with os.fdopen(fd, "w") as f:
            f.write(doc_text)
        self.addCleanup(os.remove, path)
        return path

    def test_huge_integer_coefficient_is_a_config_error(self):
        # A 400-digit integer used to raise OverflowError from math.isfinite.
        text = json.dumps(_config()).replace("3.0, -3.0", "1" + "0" * 400 + ", -3.0", 1)
        path = self.write(text)
        with self.assertRaises(ConfigError) as cm:
            load_ns_config(path)
        self.assertIn(path, str(cm.exception))
        self.assertIn("patterns[0].coefficients[0][0]", str(cm.exception))

    def test_huge_integer_in_normalization_and_bounds(self):
        pattern = _config()["patterns"][0]
        for key, value in (("normalization", {"delta": 10 ** 400}), ("lower_bound", 10 ** 400)):
            doc = _config(patterns=[dict(pattern, **{key: value})])
            with self.assertRaises(ConfigError) as cm:
                load_ns_config(self.write(json.dumps(doc)))
            self.assertIn("patterns[0]." + key, str(cm.exception))

    def test_catastrophic_patterns_are_refused(self):
        pattern = _config()["patterns"][0]
        for regex in (r"(a+)+b", r"(\d|\d)*x", r"(?:a?){30}a{30}", r"(.*)*layers\.(\d+)", r"(x)\1",
                      r"(?=a)(\d+)", r"a?b?c?(\d+)", r".*.*.*.*(\d+)"):
            doc = _config(patterns=[dict(pattern, regex=regex, layers=None)])
            with self.assertRaises(ConfigError, msg=regex) as cm:
                load_ns_config(self.write(json.dumps(doc)))
            self.assertIn("patterns[0].regex", str(cm.exception))
            self.assertIn("unsafe regular expression", str(cm.exception))

    def test_patterns_muspec_writes_are_accepted(self):
        for regex in (r"(?:.*\.)?layers\.(\d+)\.self_attn\.q_proj\.weight", r"(?:.*\.)?h\.(\d+)\.attn\.c_attn\.weight",
                      r"model\.layers\.(\d+)\.mlp\.(?:gate|up)_proj\.weight", r"(?:\d\d)+x", r".*layers\.(\d+)\..*"):
            self.assertIsNone(regex_problem(regex), regex)

    def test_lookup_is_fast_on_adversarial_names(self):
        cfg = load_ns_config(_config())
        start = time.monotonic()
        for name in ("layers." * 30 + "x", "a" * MAX_NAME_LENGTH, "9" * 10000, "layers.1.mlp.up_proj.weight"):
            cfg.lookup(name)
        self.assertLess(time.monotonic() - start, 2.0)
        self.assertEqual(cfg.lookup("model.layers.1.mlp.up_proj.weight")[1], "pattern[0]")

    def test_other_malformed_entries_name_file_and_entry(self):
        cases = {
            '{"format": "muspec.ns_config", "version": 1, "parameters": []}': "parameters",
            json.dumps(_config(patterns=[{"regex": "(", "steps": 1, "coefficients": [[1, 0, 0]]}])): "patterns[0].regex",
            json.dumps(_config(patterns=[{"regex": "x", "steps": 1e9, "coefficients": []}])): "patterns[0].steps",
            '{"format": "muspec.ns_config", "version": ' + "9" * 5000 + "}": "",
        }
        for text, where in cases.items():
            path = self.write(text)
            with self.assertRaises(ConfigError, msg=text[:80]) as cm:
                load_ns_config(path)
            self.assertTrue(str(cm.exception).startswith(path), str(cm.exception))
            self.assertIn(where, str(cm.exception))


if __name__ == "__main__":
    unittest.main()
