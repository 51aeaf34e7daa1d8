"""Newton-Schulz calculus (muspec's lib/ns, as `muspec ns ...` uses it): schedules are catalog
names ("keller", "polar-express", ...) or schedule files; bands are "LO,HI" (default: the
schedule family's, docs/ns.md); singular values may be raw (with ``frobenius``) or a full spectrum."""
import json

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
