"""Scans and spectra stores as pandas DataFrames (one row per matrix, the columns of summary.csv)."""
import io
import os

from . import _lib


def _frame(result):
    """The library's CSV as a DataFrame, every number the exact double the library wrote (%.17g;
    pandas' default float parser may be off by one ulp, which fit/recommend on it would show)."""
    import pandas as pd
    return pd.read_csv(io.StringIO(result["csv"]), float_precision="round_trip")


def read_spectra(path, sigma=False):
    """A spectra.h5 store as the DataFrame ``pandas.read_csv`` gives for the scan's summary.csv.
    With ``sigma=True``: ``(DataFrame, [sigma arrays, ascending, one per row])``."""
    r = _lib.read_spectra(os.fspath(path))
    df = _frame(r)
    df.attrs["store"] = dict(r["attributes"])
    return (df, list(r["sigma"])) if sigma else df


def scan(paths, sigma=False, output=None, method="auto", device="auto", kind="auto", quantiles=None,
         include="", exclude="", transform="none", threads=0, min_dim=2, layers=0, family=""):
    """``muspec scan PATHS`` as a library call: a DataFrame equal to the CLI's summary.csv.

    Options are the CLI's (``kind`` = auto | weights | momentum | exp_avg | exp_avg_sq | all).
    ``output``: also write the spectra.h5 store there. Skipped and ignored tensors are listed in
    ``df.attrs["skipped"]`` / ``df.attrs["ignored"]`` as (file, tensor, reason). With
    ``sigma=True``: ``(DataFrame, [sigma arrays])``.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    r = _lib.scan([os.fspath(p) for p in paths], method=method, device=device, kind=kind,
                  quantiles=list(quantiles or []), include=include, exclude=exclude, transform=transform,
                  threads=threads, min_dim=min_dim, layers=layers, family=family,
                  output=os.fspath(output) if output else "")
    df = _frame(r)
    for key in ("skipped", "ignored", "notices", "backend"):
        df.attrs[key] = r[key]
    return (df, list(r["sigma"])) if sigma else df


def write_spectra(path, records, attributes=None, quantiles=None):
    """Writes records (dicts with the store's field names -- name, rows, cols, run, step, kind,
    parameter, op_type, layer, ..., plus "sigma" and "frobenius") to a spectra.h5 store,
    atomically, through muspec's store code; summaries are computed by the library."""
    _lib.write_spectra(os.fspath(path), list(records), dict(attributes or {}), list(quantiles or []))


def plan(spectra, mean_steps=None, budget=None, by="optype", family="keller", precision="bf16", max_steps=15,
         quantile=0.05, band="", run="", step=None, kind="auto"):
    """``muspec plan --spectra SPECTRA ...``: NS steps per operator type (``by="optype"``) or
    layer under a budget (``mean_steps`` or ``budget`` in flops per optimizer step). Returns the
    ns_config dict the CLI writes; records it had to skip are warned about (UserWarning)."""
    import json
    import warnings
    r = _lib.plan(os.fspath(spectra), mean_steps=mean_steps, budget=budget, by=by, family=family,
                  precision=precision, max_steps=max_steps, quantile=quantile, band=band, run=run, step=step,
                  kind=kind)
    for s in r["skipped"]:
        warnings.warn(f"muspec.plan: skipped {s}", stacklevel=2)
    return json.loads(r["config"])
