"""The compiled module (`import muspec`): singular values and summaries of in-memory arrays
against NumPy's LAPACK SVD and against the CLI on the same tensors, DataFrames against the
CLI's summary.csv, zero-copy reads, and errors with the library's messages."""
import os
import tempfile
import tracemalloc
import unittest

import numpy as np

from module_support import ROOT, muspec, needs_cli, needs_module, run_cli

try:
    import pandas as pd
except ImportError:
    pd = None

NPZ = os.path.join(ROOT, "sample_data", "numpy", "momentum_buffers.npz")
RUN = os.path.join(ROOT, "sample_data", "runs", "d16")


def numpy_sigma(x):
    """Oracle: NumPy's LAPACK SVD in float64, ascending."""
    return np.sort(np.linalg.svd(np.asarray(x, dtype=np.float64), compute_uv=False))


@needs_module
class ArraysAgainstNumpy(unittest.TestCase):
    def setUp(self):
        self.rng = np.random.default_rng(19)

    def check(self, x, expected, rtol=1e-10):
        got = muspec.singular_values(x, method="svd")
        self.assertEqual(got.shape, expected.shape)
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * expected[-1])

    def test_float64_float32_float16_and_strides(self):
        x = self.rng.standard_normal((70, 40))
        self.check(x, numpy_sigma(x))
        self.check(x.T, numpy_sigma(x))                       # transposed view, no copy
        self.check(x[::2, 1::3], numpy_sigma(x[::2, 1::3]))   # arbitrary strides
        self.check(x[::-1], numpy_sigma(x))                   # negative stride
        self.check(x.astype(">f8"), numpy_sigma(x))           # big-endian bytes
        x32 = x.astype(np.float32)
        self.check(x32, numpy_sigma(x32))                     # float32 decoded exactly to float64
        x16 = x.astype(np.float16)
        self.check(x16, numpy_sigma(x16))

    def test_methods_agree_above_their_floor(self):
        x = self.rng.standard_normal((60, 90))
        ref = numpy_sigma(x)
        for method in ("auto", "gram"):
            r = muspec.summarize(x, method=method, sigma=True)
            keep = ref >= r["floor"]
            np.testing.assert_allclose(r["sigma"][keep], ref[keep], rtol=1e-2)
            self.assertIn(r["method"], ("gram", "svd"))

    def test_summary_fields_against_numpy(self):
        x = self.rng.standard_normal((50, 30))
        s = numpy_sigma(x)
        fro = np.linalg.norm(x)
        row = muspec.summarize(x, method="svd", quantiles=[0.05, 0.5])
        self.assertAlmostEqual(row["sigma_max"], s[-1], delta=1e-12 * s[-1])
        self.assertAlmostEqual(row["frobenius"], fro, delta=1e-12 * fro)
        self.assertAlmostEqual(row["nuclear"], s.sum(), delta=1e-10 * s.sum())
        self.assertAlmostEqual(row["stable_rank"], fro ** 2 / s[-1] ** 2, delta=1e-10)
        self.assertAlmostEqual(row["q0.05_sigma"], np.quantile(s, 0.05), delta=1e-12 * s[-1])
        self.assertAlmostEqual(row["q0.5_rel_frob"], np.quantile(s, 0.5) / fro, delta=1e-12)
        self.assertEqual((row["rows"], row["cols"], row["dtype"]), (50, 30, "F64"))

    def test_torch_tensors_including_bf16(self):
        try:
            import torch
        except ImportError:
            self.skipTest("torch is not installed")
        g = torch.Generator().manual_seed(3)
        t = torch.randn(48, 32, generator=g)
        self.check(t, numpy_sigma(t.numpy()))
        self.check(t.t(), numpy_sigma(t.numpy()))              # non-contiguous tensor
        b = t.to(torch.bfloat16)
        # Oracle: torch's own bf16 -> float32 conversion (exact), then NumPy's SVD.
        self.check(b, numpy_sigma(b.float().numpy()))
        self.assertEqual(muspec.summarize(b)["dtype"], "BF16")
        p = torch.nn.Parameter(t.clone())                      # requires_grad: read through .detach()
        self.check(p, numpy_sigma(t.numpy()))

    def test_sign_transform(self):
        x = self.rng.standard_normal((40, 40))
        np.testing.assert_allclose(muspec.singular_values(x, method="svd", transform="sign"),
                                   numpy_sigma(np.sign(x)), rtol=1e-10, atol=1e-9)


@needs_module
class ZeroCopy(unittest.TestCase):
    def test_no_python_side_copy_of_a_large_input(self):
        # 16 Mi float32 entries' worth of bytes in a 65536 x 64 matrix (64 MiB would be a 4096^2
        # float64; this shape keeps the SVD cheap). A copy of the input (numpy.ascontiguousarray,
        # astype, torch.tensor(...).numpy()) is a NumPy allocation and shows in tracemalloc's peak.
        x = np.random.default_rng(0).standard_normal((65536, 64)).astype(np.float32)
        xt = x.T  # a strided view: any conversion to a contiguous array would copy it
        tracemalloc.start()
        try:
            sigma = muspec.singular_values(xt, method="gram")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        self.assertLess(peak, x.nbytes // 16, f"peak Python allocation {peak} B for a {x.nbytes} B input")
        self.assertEqual(sigma.shape, (64,))
        # The control: the same measurement sees a copy when one is made.
        tracemalloc.start()
        try:
            np.ascontiguousarray(xt, dtype=np.float64)
            _, peak_copy = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        self.assertGreater(peak_copy, x.nbytes)

    def test_read_only_memory_map(self):
        with tempfile.TemporaryDirectory() as d:
            x = np.random.default_rng(1).standard_normal((30, 20))
            np.save(os.path.join(d, "x.npy"), x)
            m = np.load(os.path.join(d, "x.npy"), mmap_mode="r")
            self.assertFalse(m.flags.writeable)
            np.testing.assert_allclose(muspec.singular_values(m, method="svd"), numpy_sigma(x), rtol=1e-10)


@needs_module
class BadInputs(unittest.TestCase):
    def test_messages(self):
        cases = [
            (np.zeros(5), muspec.UsageError, "weights: expected a 2-D array, got 1 dimensions"),
            (np.zeros((3, 3), dtype=np.int32), muspec.UsageError, "weights: unsupported element type"),
            (np.zeros((0, 3)), muspec.UsageError, "weights: empty matrix (0 x 3)"),
        ]
        for x, err, msg in cases:
            with self.assertRaises(err) as cm:
                muspec.singular_values(x, name="weights")
            self.assertIn(msg, str(cm.exception))
        with self.assertRaisesRegex(muspec.UsageError, "has 2-byte elements but the array's are 4 bytes"):
            muspec._lib.analyse_array(np.zeros((3, 3), dtype=np.float32), dtype="bf16")
        x = np.ones((4, 4))
        x[1, 2] = np.nan
        with self.assertRaisesRegex(muspec.InputError, "w: 1 non-finite entries"):
            muspec.singular_values(x, name="w")
        self.assertTrue(issubclass(muspec.UsageError, ValueError))
        self.assertTrue(issubclass(muspec.InputError, muspec.Error))

    @needs_cli
    def test_same_messages_as_the_cli(self):
        with self.assertRaises(muspec.UsageError) as cm:
            muspec.singular_values(np.eye(3), method="bogus")
        with tempfile.TemporaryDirectory() as d:
            p = run_cli("scan", NPZ, "--method", "bogus", "-o", os.path.join(d, "s.h5"), check=False)
            self.assertEqual(p.returncode, 2)
            self.assertIn(str(cm.exception), p.stderr)
            bad = os.path.join(d, "bad.h5")
            with open(bad, "wb") as f:
                f.write(b"not an HDF5 file at all" * 10)
            with self.assertRaises(muspec.InputError) as cm:
                muspec.read_spectra(bad)
            self.assertIn(bad, str(cm.exception))
            p = run_cli("fit", bad, "-o", os.path.join(d, "laws.json"), check=False)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn(str(cm.exception), p.stderr)


@needs_module
@needs_cli
@unittest.skipIf(pd is None, "pandas is not installed")
class AgainstTheCli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        cls.h5, cls.csv = os.path.join(d, "spectra.h5"), os.path.join(d, "summary.csv")
        run_cli("scan", NPZ, "-o", cls.h5, "--summary", cls.csv, "--quiet")
        cls.run_h5, cls.run_csv = os.path.join(d, "run.h5"), os.path.join(d, "run.csv")
        run_cli("scan", RUN, "-o", cls.run_h5, "--summary", cls.run_csv, "--quiet", "--kind", "momentum")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_singular_values_and_summaries_equal_the_clis(self):
        import h5py  # an independent reader of the CLI's store
        cli = pd.read_csv(self.csv)
        z = np.load(NPZ)
        with h5py.File(self.h5, "r") as f:
            for i, row in cli.iterrows():
                x = z[row["tensor"]]
                got = muspec.summarize(x, method=row["method"], name=row["name"], sigma=True)
                np.testing.assert_array_equal(got["sigma"], f["spectra"][f"{i:06d}"][()])
                for col in cli.columns:
                    if col in ("file", "tensor", "run", "step", "kind", "parameter", "op_type", "layer",
                               "num_layers", "rel_depth", "muon", "slice", "model_params", "params_source"):
                        continue  # labels from the file and its directory, not from the array
                    if isinstance(row[col], float):
                        self.assertTrue(np.isclose(got[col], row[col], rtol=1e-14, equal_nan=True), col)
                    else:
                        self.assertEqual(got[col], row[col], col)

    def test_read_spectra_equals_summary_csv(self):
        for h5, csv in ((self.h5, self.csv), (self.run_h5, self.run_csv)):
            df, sigma = muspec.read_spectra(h5, sigma=True)
            pd.testing.assert_frame_equal(df, pd.read_csv(csv))
            import h5py
            with h5py.File(h5, "r") as f:
                self.assertEqual(len(sigma), len(f["spectra"]))
                for i, s in enumerate(sigma):
                    np.testing.assert_array_equal(s, f["spectra"][f"{i:06d}"][()])

    def test_scan_equals_the_cli(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "py.h5")
            df, sigma = muspec.scan([RUN], kind="momentum", sigma=True, output=out)
            pd.testing.assert_frame_equal(df, pd.read_csv(self.run_csv))
            pd.testing.assert_frame_equal(muspec.read_spectra(out), df)
        ref = muspec.read_spectra(self.run_h5, sigma=True)[1]
        for a, b in zip(sigma, ref):
            np.testing.assert_array_equal(a, b)

    def test_write_spectra_is_read_by_the_cli(self):
        # Records written from Python (sigma from NumPy) go through the store code; the CLI's
        # `fit` reads them back (an unreadable or inconsistent store would fail there).
        rng = np.random.default_rng(5)
        records = []
        for step in (100, 200, 300):
            for layer in range(2):
                x = rng.standard_normal((32, 16)) / (1 + step / 100)
                records.append(dict(name=f"model.layers.{layer}.mlp.up_proj.weight", rows=32, cols=16, run="r",
                                    step=step, model_params=10000, kind="momentum", op_type="up", layer=layer,
                                    num_layers=2, rel_depth=float(layer), muon=True, method="svd",
                                    sigma=numpy_sigma(x), frobenius=float(np.linalg.norm(x)),
                                    floor=muspec.svd_floor(numpy_sigma(x)[-1], 32, 16)))
        with tempfile.TemporaryDirectory() as d:
            h5 = os.path.join(d, "py.h5")
            muspec.write_spectra(h5, records, quantiles=[0.05, 0.5])
            df = muspec.read_spectra(h5)
            self.assertEqual(list(df["step"]), [100, 100, 200, 200, 300, 300])
            np.testing.assert_allclose(df["sigma_max"], [r["sigma"][-1] for r in records], rtol=1e-15)
            np.testing.assert_allclose(df["q0.5_sigma"], [np.quantile(r["sigma"], 0.5) for r in records], rtol=1e-12)
            run_cli("fit", h5, "-o", os.path.join(d, "laws.json"), "--quantiles", "0.05,0.5")


if __name__ == "__main__":
    unittest.main()
