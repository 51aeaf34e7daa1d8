"""Singular values and summaries of in-memory matrices (NumPy arrays, CPU torch tensors)."""
import io

import numpy as np

from . import _lib


def as_buffer(x):
    """The object whose buffer the library reads, and the dtype override for it.

    NumPy arrays (any strides, either byte order) pass as they are; CPU torch tensors as
    ``.numpy()`` views of the same storage (bfloat16 as its int16 bits, decoded by muspec's bf16
    code); anything else through ``numpy.asarray`` (which copies only what is not an array yet).
    """
    mod = type(x).__module__
    if mod.startswith("torch"):
        import torch
        if x.device.type != "cpu":
            raise _lib.UsageError(f"tensor on {x.device}: muspec reads CPU memory; use .cpu(), or "
                                  "muspec_torch.SpectralMonitor, which computes on the GPU")
        x = x.detach()
        if x.dtype == torch.bfloat16:
            return x.view(torch.int16).numpy(), "bf16"
        return x.numpy(), ""
    return np.asarray(x), ""


def _analyse(x, method, transform, quantiles, name, device):
    buf, dtype = as_buffer(x)
    return _lib.analyse_array(buf, method=method, dtype=dtype, transform=transform,
                              quantiles=list(quantiles or []), name=name, device=device)


def singular_values(x, method="auto", transform="none", name="array", device="cpu"):
    """All singular values of the 2-D ``x``, ascending, in float64 (the scan's ``sigma``).

    ``method``: auto | svd | gram | gram32 (docs/spectral-methods.md); ``transform``: none | sign.
    Raises :class:`muspec.InputError` when ``x`` holds NaN/Inf (as the scan skips such matrices).
    """
    r = _analyse(x, method, transform, None, name, device)
    if r["nonfinite"]:
        raise _lib.InputError(f"{name}: {r['nonfinite']} non-finite entries (NaN/Inf); not analysed")
    return r["sigma"]


def summarize(x, method="auto", quantiles=None, transform="none", name="array", device="cpu", sigma=False):
    """The scan's summary of one matrix: a dict with the columns of ``summary.csv`` (name, rows,
    cols, dtype, method, floor, nonfinite, sigma_max, ..., q<level>_sigma/_rel_max/_rel_frob/_cond).
    With ``sigma=True`` the dict also holds the singular values under "sigma"."""
    import pandas as pd
    r = _analyse(x, method, transform, quantiles, name, device)
    row = pd.read_csv(io.StringIO(r["csv"])).iloc[0].to_dict()
    if sigma:
        row["sigma"] = r["sigma"]
    return row
