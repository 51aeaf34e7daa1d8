"""Singular values and summaries of in-memory matrices (NumPy arrays, CPU torch tensors, any
object with ``__dlpack__``), read in place."""
import io

import numpy as np

from . import _lib


def as_buffer(x):
    """The object whose buffer the library reads, and the dtype override for it.

    NumPy arrays (any strides, either byte order) pass as they are; CPU torch tensors as
    ``.numpy()`` views of the same storage (bfloat16 as its int16 bits, decoded by muspec's bf16
    code); anything else through ``numpy.asarray`` (which copies only what is not an array yet).
    This is the buffer-protocol route; :func:`_analyse` prefers DLPack where the module has it.
    """
    if _is_torch(x):
        import torch
        _check_torch_device(x)
        x = x.detach()
        if x.dtype == torch.bfloat16:
            return x.view(torch.int16).numpy(), "bf16"
        return x.numpy(), ""
    return np.asarray(x), ""


def _is_torch(x):
    return type(x).__module__.startswith("torch")


def _check_torch_device(x):
    if x.device.type != "cpu":
        raise _lib.UsageError(f"tensor on {x.device}: muspec reads CPU memory; use .cpu(), or "
                              "muspec_torch.SpectralMonitor, which computes on the GPU")


def _dlpack_capsule(x):
    """The DLPack capsule of ``x`` when it should go that way (torch tensors and other objects
    with ``__dlpack__``; NumPy arrays keep the buffer protocol, which also reads read-only and
    big-endian arrays that NumPy will not export), else None."""
    if not getattr(_lib, "has_dlpack", False) or isinstance(x, np.ndarray) or not hasattr(x, "__dlpack__"):
        return None
    if _is_torch(x):
        _check_torch_device(x)
        x = x.detach()  # a tensor that requires grad refuses __dlpack__
    try:
        return x.__dlpack__()
    except (BufferError, RuntimeError, TypeError):  # a layout or type the producer will not export
        return None


def _analyse(x, method="auto", transform="none", quantiles=None, name="array", device="cpu"):
    """The library's analysis of one matrix: a dict with sigma, method, floor, device, nonfinite,
    frobenius, csv (the scan's row) and address (where the elements were read: the caller's
    memory, as no copy is made)."""
    options = dict(method=method, transform=transform, quantiles=list(quantiles or []), name=name, device=device)
    capsule = _dlpack_capsule(x)
    if capsule is not None:
        return _lib.analyse_dlpack(capsule, **options)
    buf, dtype = as_buffer(x)
    return _lib.analyse_array(buf, dtype=dtype, **options)


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
    row = pd.read_csv(io.StringIO(r["csv"]), float_precision="round_trip").iloc[0].to_dict()
    if sigma:
        row["sigma"] = r["sigma"]
    return row
