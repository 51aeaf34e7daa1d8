"""Newton-Schulz calculus (muspec's lib/ns, as `muspec ns ...` uses it): schedules are catalog
names ("keller", "polar-express", ...) or schedule files; bands are "LO,HI" (default: the
schedule family's, docs/ns.md); singular values may be raw (with ``frobenius``) or a full spectrum."""
import json
import os

import numpy as np

from . import _lib


def catalog():
    """Names of the built-in schedules."""
    return list(_lib.ns_catalog())


def schedule(spec):
    """A schedule as the dict of its schedule file (polynomials, normalization, family, ...)."""
    return json.loads(_lib.ns_schedule(spec))


def threshold(spec, steps=None, band=""):
    """Smallest normalized singular value s = sigma/||G||_F that ``steps`` steps lift into the band."""
    return _lib.ns_threshold(spec, steps, band)


def min_steps(spec, lower, band="", max_steps=100):
    """Fewest steps so that every s in [lower, 1] lands in the band; None when none does."""
    return _lib.ns_min_steps(spec, lower, band, max_steps)


def eval(spec, sigma, steps=None, band="", frobenius=float("nan")):  # noqa: A001 (the CLI's name)
    """What the schedule does to one matrix's singular values: band and energy fractions,
    input/output ranges, worst deviation from 1 (``muspec ns eval``)."""
    return _lib.ns_eval(spec, steps, np.asarray(sigma, dtype=np.float64).ravel().tolist(), band, frobenius)


def design(lower, steps, upper=1.0, degree=5, cushion=None, safety=1.01, safety_inside=False, tolerance=1e-3,
           name="designed", output=None):
    """``muspec ns design``: per-step coefficients by the greedy minimax construction (Polar
    Express recursion) for normalized singular values in [lower, upper]. Returns the schedule
    file's dict (what ``muspec ns design --json`` prints; usable as ``family=`` once written with
    ``output``). A design that does not converge is a UserWarning; its status is also in the
    schedule's metadata."""
    import warnings
    r = _lib.ns_design(lower, upper=upper, steps=steps, degree=degree, cushion=cushion, safety=safety,
                       safety_inside=safety_inside, tolerance=tolerance, name=name,
                       output=os.fspath(output) if output else "")
    if r["status"] != "converged":
        warnings.warn(f"muspec.ns.design: {r['status']}: {r['message']}", stacklevel=2)
    return json.loads(r["schedule"])
