"""Scaling laws and NS recommendations: ``muspec fit``, ``muspec predict`` and ``muspec recommend``
as library calls, on spectra stores or on DataFrames with the columns of summary.csv (what
:func:`muspec.scan` and :func:`muspec.read_spectra` return, filtered as you like). Each returns
the dict the CLI's JSON file holds (laws.json, predictions.json, ns_config.json)."""
import json
import os
import tempfile
import warnings

from . import _lib


def _is_frame(x):
    return hasattr(x, "columns") and hasattr(x, "to_dict")


def _frame_arg(df, sigma):
    """A DataFrame as (columns, column names, sigma) for the library: plain Python lists, so the
    library reads each cell (NaN = blank, as in summary.csv)."""
    names = [str(c) for c in df.columns]
    columns = {str(c): df[c].tolist() for c in df.columns}
    if sigma is not None:
        sigma = [list(map(float, s)) for s in sigma]
    return (columns, names, sigma)


def _paths(data):
    if isinstance(data, (str, os.PathLike)):
        return [os.fspath(data)]
    return [os.fspath(p) for p in data]


def _warn(who, lines, prefix=""):
    for line in lines:
        warnings.warn(f"muspec.{who}: {prefix}{line}", stacklevel=3)


def fit(data, sigma=None, output=None, quantiles=None, scale="rel_frob", group="optype,depth:4", burn_in="auto",
        kind="auto", transform="none", all_matrices=False, params="auto", null_draws=200, null_seed=1, robust=False,
        bootstrap=0, seed=1):
    """``muspec fit``: per-group power laws q ~ a M^beta of the settled spectral quantiles across
    model sizes (docs/scaling-laws.md). ``data``: spectra.h5 path(s) or a DataFrame with the
    columns of summary.csv (``sigma``: optionally its sigma arrays, for levels the columns lack).
    Returns the laws.json dict; ``output`` also writes it there. Options are the CLI's. Unreadable
    stores, unsettled series and the fit's notes arrive as UserWarnings."""
    if _is_frame(data):
        r = _lib.fit([], frame=_frame_arg(data, sigma), **_fit_options(locals()))
    else:
        r = _lib.fit(_paths(data), **_fit_options(locals()))
    _warn("fit", r["skipped"], "skipped ")
    _warn("fit", r["warnings"], "warning: ")
    _warn("fit", r["notices"], "note: ")
    if r["unsettled"]:
        _warn("fit", [f"{len(r['unsettled'])} series never settled and were left out "
                      f"(first: run {r['unsettled'][0][0]!r}, {r['unsettled'][0][1]})"])
    laws = json.loads(r["laws"])
    return laws


def _fit_options(a):
    return dict(quantiles=list(a["quantiles"] or []), scale=a["scale"], group=a["group"], burn_in=str(a["burn_in"]),
                kind=a["kind"], transform=a["transform"], all_matrices=a["all_matrices"], params=a["params"],
                null_draws=a["null_draws"], null_seed=a["null_seed"], robust=a["robust"], bootstrap=a["bootstrap"],
                seed=a["seed"], output=os.fspath(a["output"]) if a["output"] else "")


class _LawsFile:
    """A laws.json path for the library: the path itself, or a dict written to a temporary file
    (the library's reader validates it either way)."""

    def __init__(self, laws):
        self.tmp = None
        if isinstance(laws, dict):
            fd, self.path = tempfile.mkstemp(suffix=".json", prefix="muspec-laws-")
            with os.fdopen(fd, "w") as f:
                json.dump(laws, f)
            self.tmp, self.label = self.path, "(laws dict)"
        else:
            self.path = self.label = os.fspath(laws)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.tmp:
            os.unlink(self.tmp)


def predict(laws, params, level=0.95):
    """``muspec predict``: each fitted law's quantile at model size ``params`` with its prediction
    intervals (group mean: lower/upper; one matrix: member_lower/member_upper). ``laws``: a
    laws.json path or the dict :func:`fit` returned. Returns the predictions.json dict
    (``pandas.json_normalize(d["predictions"])`` makes it a table)."""
    with _LawsFile(laws) as f:
        r = _lib.predict(f.path, float(params), level=level, label=f.label)
    _warn("predict", r["notes"], "note: ")
    return json.loads(r["predictions"])


def recommend(spectra=None, laws=None, sigma=None, output=None, format="muspec", quantile=0.05,  # noqa: A002
              family="keller", band="", margin=1.0, max_steps=15, precision="bf16", verify=False, burn_in="auto",
              fragile_ratio=1.1, run="", step=None, kind="auto", latest=False, params=None, level=0.95, layers=None,
              model_config="", naming="", name_prefix=""):
    """``muspec recommend``: per-matrix NS steps (docs/ns-config.md). Measured mode: ``spectra``, a
    spectra.h5 path or a DataFrame with the columns of summary.csv (``verify=True`` reads each
    matrix again from its checkpoint, named in the ``file`` column). Predicted mode: ``laws`` (a
    path or :func:`fit`'s dict) with ``params`` and ``layers`` or ``model_config``. Returns the
    ns_config.json dict; ``output`` also writes it (``format="torch-groups"`` for that file's
    other format). Skipped records, notes and unmet requirements arrive as UserWarnings."""
    if (spectra is None) == (laws is None):
        raise _lib.UsageError("recommend: give exactly one of spectra (a store or a DataFrame) or laws")
    opts = dict(quantile=quantile, family=family, band=band, margin=margin, max_steps=max_steps, precision=precision,
                verify=verify, burn_in=str(burn_in), fragile_ratio=fragile_ratio, run=run, step=step, kind=kind,
                latest=latest, params=None if params is None else float(params), level=level, layers=layers,
                model_config=os.fspath(model_config) if model_config else "", naming=naming,
                output=os.fspath(output) if output else "", format=format, name_prefix=name_prefix)
    if laws is not None:
        with _LawsFile(laws) as f:
            r = _lib.recommend(laws=f.path, label=f.label, **opts)
    elif _is_frame(spectra):
        r = _lib.recommend(frame=_frame_arg(spectra, sigma), label="(DataFrame)", **opts)
    else:
        r = _lib.recommend(spectra=os.fspath(spectra), label=os.fspath(spectra), **opts)
    _warn("recommend", r["skipped"], "skipped ")
    _warn("recommend", [n for n in r["notes"] if not n.startswith("using ")], "note: ")
    if r["unmet"]:
        _warn("recommend", [f"{len(r['unmet'])} entries (e.g. {r['unmet'][0]}): no {family} schedule within "
                            f"{max_steps} steps is promised to bring their lower bound into the band at {precision}"])
    return json.loads(r["config"])
