"""Arrays handed over through DLPack (`__dlpack__`): torch tensors (strided, transposed, sliced,
bfloat16), NumPy arrays and any object that only has `__dlpack__` are read in place -- the
library reads the producer's own memory (its address is the tensor's data pointer) -- and give
NumPy's LAPACK singular values."""
import unittest

import numpy as np

from module_support import muspec, needs_module

try:
    import torch
except ImportError:
    torch = None


def numpy_sigma(x):
    return np.sort(np.linalg.svd(np.asarray(x, dtype=np.float64), compute_uv=False))


class OnlyDlpack:
    """An array from some other library: nothing but the DLPack protocol."""

    def __init__(self, producer):
        self.producer = producer

    def __dlpack__(self, stream=None):
        return self.producer.__dlpack__()

    def __dlpack_device__(self):
        return self.producer.__dlpack_device__()


needs_dlpack = unittest.skipUnless(muspec is not None and getattr(muspec._lib, "has_dlpack", False),
                                   "module built without DLPack (Debian: libdlpack-dev)")


@needs_module
@needs_dlpack
class Dlpack(unittest.TestCase):
    def read(self, x, expected, address, rtol=1e-10):
        r = muspec.arrays._analyse(x, method="svd")
        self.assertEqual(r["address"], address, "the library did not read the producer's memory")
        np.testing.assert_allclose(r["sigma"], expected, rtol=rtol, atol=rtol * expected[-1])

    @unittest.skipIf(torch is None, "torch is not installed")
    def test_torch_tensors_in_place_with_their_strides(self):
        g = torch.Generator().manual_seed(7)
        base = torch.randn(64, 48, generator=g, dtype=torch.float64)
        ref = base.numpy()
        cases = [
            (base, ref),
            (base.t(), ref.T),                       # transposed: strides (1, 48)
            (base[::3, 1::2], ref[::3, 1::2]),       # stepped slices: strides (144, 2), an offset
            (base[5:40, 7:30], ref[5:40, 7:30]),     # a window: byte offset into the storage
        ]
        for t, a in cases:
            self.read(t, numpy_sigma(a), t.data_ptr())
            self.read(OnlyDlpack(t), numpy_sigma(a), t.data_ptr())
        f32 = base.float().t()
        self.read(f32, numpy_sigma(f32.numpy()), f32.data_ptr())
        w = torch.nn.Parameter(base.float())  # requires grad: read through detach(), same memory
        self.read(w, numpy_sigma(base.float().numpy()), w.data_ptr())

    @unittest.skipIf(torch is None, "torch is not installed")
    def test_torch_bfloat16_through_dlpack(self):
        g = torch.Generator().manual_seed(8)
        b = torch.randn(40, 24, generator=g).to(torch.bfloat16).t()  # strided bf16
        exact = b.to(torch.float64).numpy()  # bf16 -> f64 is exact
        try:
            b.__dlpack__()
        except (BufferError, RuntimeError, TypeError):
            self.skipTest("this torch does not export bfloat16 through DLPack")
        r = muspec.arrays._analyse(OnlyDlpack(b), method="svd")
        self.assertEqual(r["address"], b.data_ptr())
        np.testing.assert_allclose(r["sigma"], numpy_sigma(exact), rtol=1e-10)
        self.assertIn(",BF16,", r["csv"])

    def test_numpy_arrays_through_dlpack(self):
        if not hasattr(np.ndarray, "__dlpack__"):
            self.skipTest("NumPy < 1.22 has no __dlpack__")
        x = np.random.default_rng(2).standard_normal((50, 30))
        for a in (x, x.T, x[::2, ::3], x[::-1]):
            self.read(OnlyDlpack(a), numpy_sigma(a), a.__array_interface__["data"][0])
            r = muspec._lib.analyse_dlpack(a.__dlpack__(), method="svd")
            self.assertEqual(r["address"], a.__array_interface__["data"][0])
        # NumPy arrays passed directly keep the buffer protocol, also in place
        self.read(x.T, numpy_sigma(x), x.__array_interface__["data"][0])

    def test_capsule_rules_and_errors(self):
        x = np.ones((3, 3))
        if not hasattr(x, "__dlpack__"):
            self.skipTest("NumPy < 1.22 has no __dlpack__")
        cap = x.__dlpack__()
        muspec._lib.analyse_dlpack(cap)
        with self.assertRaisesRegex(muspec.UsageError, "unused 'dltensor' capsule"):
            muspec._lib.analyse_dlpack(cap)  # a capsule is consumed once
        with self.assertRaisesRegex(muspec.UsageError, "w: expected a 2-D array, got 1 dimensions"):
            muspec.singular_values(OnlyDlpack(np.ones(4)), name="w")
        with self.assertRaisesRegex(muspec.UsageError, "w: unsupported element type int32"):
            muspec.singular_values(OnlyDlpack(np.ones((2, 2), dtype=np.int32)), name="w")

    @unittest.skipIf(torch is None, "torch is not installed")
    def test_no_copy_of_a_large_tensor(self):
        # A 4096 x 512 float32 tensor, transposed (non-contiguous): any conversion would be an
        # 8 MiB (float32) or 16 MiB (float64) array at another address; the library reads the
        # elements at the tensor's own data pointer.
        t = torch.randn(4096, 512).t()
        r = muspec.arrays._analyse(t, method="gram")
        self.assertEqual(r["address"], t.data_ptr())
        self.assertEqual(len(r["sigma"]), 512)


if __name__ == "__main__":
    unittest.main()
