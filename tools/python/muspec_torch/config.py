"""Reading and validating muspec configuration files.

Two formats are understood:

* ``muspec.ns_config`` version 1 (written by ``muspec recommend`` / ``muspec plan``): per-parameter
  Newton–Schulz (NS) schedules keyed by parameter name, name patterns for extrapolated configs,
  and an optional default. See ``docs/trainer-adapter.md`` for the schema.
* ``muspec.torch_groups`` version 1 (``muspec recommend --format torch-groups``): parameter groups
  for ``torch.optim.Muon`` (one coefficient triple per group). Loaded by :mod:`.torch_groups`.

This module does not need torch. Every error is a :class:`ConfigError` whose message starts with
the file name and the JSON path of the offending field, e.g.
``ns_config.json: parameters["model.layers.0.mlp.up_proj.weight"].coefficients[2]: ...``.
Unknown fields are ignored (forward compatibility within version 1).
"""

import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from .safe_regex import MAX_NAME_LENGTH, regex_problem

NS_CONFIG_FORMAT = "muspec.ns_config"
TORCH_GROUPS_FORMAT = "muspec.torch_groups"
SUPPORTED_VERSION = 1
DEFAULT_EPSILON = 1e-7
#: Upper bound on NS steps accepted from a file (torch.optim.Muon uses the same limit).
MAX_STEPS = 99  # as muspec's own validator (analysis/configs/ns_config.cpp)

#: Keller Jordan's quintic (KellerJordan/Muon), used by ``Schedule.keller()``.
KELLER_COEFFICIENTS = (3.4445, -4.7750, 2.0315)

# Wrapper prefixes added by torch.compile (``_orig_mod.``) and DistributedDataParallel /
# DataParallel (``module.``). They may be nested in any order.
_WRAPPER_PREFIXES = ("_orig_mod.", "module.")


def canonical_name(name: str) -> str:
    """Return ``name`` without leading wrapper prefixes (``_orig_mod.``, ``module.``).

    Prefixes are removed repeatedly, so ``module._orig_mod.layers.0.w`` becomes ``layers.0.w``.
    """
    changed = True
    while changed:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if name.startswith(prefix):
                name = name[len(prefix):]
                changed = True
    return name


class ConfigError(ValueError):
    """A configuration file is malformed. The message names the file and the field."""


@dataclass(frozen=True)
class Schedule:
    """One NS schedule: ``steps`` quintic steps, step t using ``coefficients[t]`` = (a, b, c).

    Normalization before the first step: ``X0 = G / (||G||_F * (1 + delta) + epsilon)``.
    """

    steps: int
    coefficients: Tuple[Tuple[float, float, float], ...]
    delta: float = 0.0
    epsilon: float = DEFAULT_EPSILON

    def __post_init__(self):
        if len(self.coefficients) != self.steps:
            raise ValueError(
                f"Schedule: {self.steps} steps but {len(self.coefficients)} coefficient triples")

    @property
    def is_uniform(self) -> bool:
        """True when every step uses the same (a, b, c) (expressible by torch.optim.Muon)."""
        return all(t == self.coefficients[0] for t in self.coefficients)

    @classmethod
    def keller(cls, steps: int = 5, epsilon: float = DEFAULT_EPSILON) -> "Schedule":
        """``steps`` repetitions of Keller Jordan's quintic (3.4445, -4.7750, 2.0315)."""
        return cls(steps, (KELLER_COEFFICIENTS,) * steps, 0.0, epsilon)

    @classmethod
    def from_coefficients(cls, coefficients, delta: float = 0.0,
                          epsilon: float = DEFAULT_EPSILON) -> "Schedule":
        """Build a schedule from a list of (a, b, c) triples (one per step)."""
        triples = tuple(tuple(float(v) for v in t) for t in coefficients)
        return cls(len(triples), triples, float(delta), float(epsilon))


@dataclass
class ParameterEntry:
    """An entry of ``parameters`` (keyed by exact name) or of ``default``."""

    name: Optional[str]            # the name as written in the file (None for the default)
    schedule: Schedule
    shape: Optional[Tuple[int, ...]] = None
    op_type: Optional[str] = None
    layer: Optional[int] = None
    group: Optional[str] = None
    lower_bound: Optional[float] = None
    bound_kind: Optional[str] = None
    matrices: int = 1                # > 1: the tensor was analysed as this many matrices
    storage: Optional[str] = None    # "conv1d": the model stores the transpose of ``shape``
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class PatternEntry:
    """An entry of ``patterns``: a regex full-matched against canonical parameter names.

    When ``layers`` is set, the first capture group must be an integer within [first, last].
    """

    index: int
    regex: str
    compiled: "re.Pattern" = field(repr=False)
    layers: Optional[Tuple[int, int]]
    schedule: Schedule
    op_type: Optional[str] = None
    group: Optional[str] = None
    lower_bound: Optional[float] = None
    bound_kind: Optional[str] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    def matches(self, name: str) -> bool:
        """Whether canonical ``name`` full-matches the regex with its layer index in range."""
        if len(name) > MAX_NAME_LENGTH:  # bounds the matching time (safe_regex.py)
            return False
        m = self.compiled.fullmatch(name)
        if m is None:
            return False
        if self.layers is None:
            return True
        try:
            layer = int(m.group(1))
        except (TypeError, ValueError):
            return False
        return self.layers[0] <= layer <= self.layers[1]


@dataclass
class NSConfig:
    """A validated ``muspec.ns_config`` document."""

    source: str                                   # file name (or "<object>") used in messages
    parameters: Dict[str, ParameterEntry]         # keyed by canonical name
    patterns: List[PatternEntry]
    default: Optional[ParameterEntry]
    provenance: Dict[str, Any]
    totals: Dict[str, Any]
    raw: Dict[str, Any] = field(repr=False)

    def lookup(self, name: str):
        """Return ``(schedule, source, entry)`` for a parameter name, or ``None``.

        Precedence: exact name, then the first matching pattern, then ``default``. ``source`` is
        ``"exact"``, ``"pattern[i]"`` or ``"default"``. Wrapper prefixes are stripped first.
        """
        cname = canonical_name(name)
        entry = self.parameters.get(cname)
        if entry is not None:
            return entry.schedule, "exact", entry
        for pat in self.patterns:
            if pat.matches(cname):
                return pat.schedule, f"pattern[{pat.index}]", pat
        if self.default is not None:
            return self.default.schedule, "default", self.default
        return None


# ----------------------------------------------------------------------------------------------
# validation helpers

def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_finite(v) -> bool:
    """A number that converts to a finite float: a 400-digit integer does not (it used to
    raise an uncaught OverflowError from math.isfinite)."""
    try:
        return math.isfinite(float(v))
    except OverflowError:
        return False


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class _Ctx:
    """Builds error messages ``<file>: <json path>: <problem>``."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, path: str, msg: str):
        where = f"{self.source}: {path}" if path else self.source
        raise ConfigError(f"{where}: {msg}")


def _check_format(ctx: _Ctx, doc, expected_format: str):
    if not isinstance(doc, dict):
        ctx.fail("", f"top level must be a JSON object, got {type(doc).__name__}")
    fmt = doc.get("format")
    if fmt != expected_format:
        ctx.fail("format", f"expected {expected_format!r}, got {fmt!r}")
    ver = doc.get("version")
    if not _is_int(ver):
        ctx.fail("version", f"expected integer {SUPPORTED_VERSION}, got {ver!r}")
    if ver != SUPPORTED_VERSION:
        ctx.fail("version", f"unsupported version {ver} (this adapter reads version "
                            f"{SUPPORTED_VERSION}); upgrade muspec_torch")


def _parse_triple(ctx: _Ctx, path: str, t) -> Tuple[float, float, float]:
    if not isinstance(t, (list, tuple)) or len(t) != 3:
        ctx.fail(path, f"expected a list of 3 numbers [a, b, c], got {t!r}")
    out = []
    for j, v in enumerate(t):
        if not _is_number(v):
            ctx.fail(f"{path}[{j}]", f"expected a number, got {v!r}")
        if not _is_finite(v):
            ctx.fail(f"{path}[{j}]", f"coefficient must be finite, got {v!r}")
        out.append(float(v))
    if not out[0] > 0:  # a is the gain at zero: a <= 0 would zero or flip small singular values
        ctx.fail(f"{path}[0]", f"a must be > 0, got {out[0]!r}")
    return tuple(out)


def _parse_schedule(ctx: _Ctx, path: str, obj) -> Schedule:
    steps = obj.get("steps")
    if not _is_int(steps) or steps < 1 or steps > MAX_STEPS:
        ctx.fail(f"{path}.steps", f"expected an integer in [1, {MAX_STEPS}], got {steps!r}")
    coeffs = obj.get("coefficients")
    if not isinstance(coeffs, list):
        ctx.fail(f"{path}.coefficients", f"expected a list of {steps} [a, b, c] triples, "
                                         f"got {coeffs!r}")
    if len(coeffs) != steps:
        ctx.fail(f"{path}.coefficients", f"expected exactly steps={steps} triples, "
                                         f"got {len(coeffs)}")
    triples = tuple(_parse_triple(ctx, f"{path}.coefficients[{i}]", t)
                    for i, t in enumerate(coeffs))
    delta, eps = 0.0, DEFAULT_EPSILON
    norm = obj.get("normalization")
    if norm is not None:
        if not isinstance(norm, dict):
            ctx.fail(f"{path}.normalization", f"expected an object, got {norm!r}")
        if "delta" in norm and norm["delta"] is not None:
            delta = norm["delta"]
            if not _is_number(delta) or not _is_finite(delta) or delta < 0:
                ctx.fail(f"{path}.normalization.delta",
                         f"expected a finite number >= 0, got {delta!r}")
        if "epsilon" in norm and norm["epsilon"] is not None:
            eps = norm["epsilon"]
            if not _is_number(eps) or not _is_finite(eps) or eps < 0:
                ctx.fail(f"{path}.normalization.epsilon",
                         f"expected a finite number >= 0, got {eps!r}")
    return Schedule(steps, triples, float(delta), float(eps))


def _opt_str(ctx, path, obj, key):
    v = obj.get(key)
    if v is not None and not isinstance(v, str):
        ctx.fail(f"{path}.{key}", f"expected a string or null, got {v!r}")
    return v


def _opt_num(ctx, path, obj, key):
    v = obj.get(key)
    if v is not None and (not _is_number(v) or not _is_finite(v)):
        ctx.fail(f"{path}.{key}", f"expected a finite number or null, got {v!r}")
    return None if v is None else float(v)


def _parse_entry(ctx: _Ctx, path: str, name: Optional[str], obj) -> ParameterEntry:
    if not isinstance(obj, dict):
        ctx.fail(path, f"expected an object, got {type(obj).__name__}")
    sched = _parse_schedule(ctx, path, obj)
    shape = obj.get("shape")
    if shape is not None:
        if (not isinstance(shape, list) or len(shape) < 2
                or not all(_is_int(d) and d > 0 for d in shape)):
            ctx.fail(f"{path}.shape", f"expected a list of >= 2 positive integers, got {shape!r}")
        shape = tuple(shape)
    layer = obj.get("layer")
    if layer is not None and not _is_int(layer):
        ctx.fail(f"{path}.layer", f"expected an integer or null, got {layer!r}")
    matrices = obj.get("matrices", 1)
    if matrices is None:
        matrices = 1
    if not _is_int(matrices) or matrices < 1:
        ctx.fail(f"{path}.matrices", f"expected a positive integer, got {matrices!r}")
    storage = obj.get("storage")
    if storage not in (None, "linear", "conv1d"):
        ctx.fail(f"{path}.storage", f"expected 'linear' or 'conv1d', got {storage!r}")
    return ParameterEntry(name=name, schedule=sched, shape=shape, matrices=matrices, storage=storage,
                          op_type=_opt_str(ctx, path, obj, "op_type"), layer=layer,
                          group=_opt_str(ctx, path, obj, "group"),
                          lower_bound=_opt_num(ctx, path, obj, "lower_bound"),
                          bound_kind=_opt_str(ctx, path, obj, "bound_kind"), raw=obj)


def parse_name_pattern(ctx: _Ctx, path: str, regex: str, layers):
    """Compiles a name pattern and checks its optional ``layers`` = [first, last] (which needs a
    capture group for the layer index). Returns ``(compiled, (first, last) or None)``."""
    try:
        compiled = re.compile(regex)
    except (re.error, OverflowError, RecursionError, ValueError) as e:
        ctx.fail(f"{path}.regex", f"invalid regular expression {regex!r}: {e}")
    problem = regex_problem(regex)
    if problem:
        ctx.fail(f"{path}.regex", f"unsafe regular expression {regex!r}: {problem} "
                                  f"(see muspec_torch/safe_regex.py)")
    if layers is None:
        return compiled, None
    if (not isinstance(layers, list) or len(layers) != 2
            or not all(_is_int(v) for v in layers) or layers[0] > layers[1]):
        ctx.fail(f"{path}.layers", f"expected [first, last] integers with first <= last, "
                                   f"got {layers!r}")
    if compiled.groups < 1:
        ctx.fail(f"{path}.regex", f"'layers' is set but regex {regex!r} has no capture "
                                  f"group for the layer index")
    return compiled, (layers[0], layers[1])


def _parse_pattern(ctx: _Ctx, i: int, obj) -> PatternEntry:
    path = f"patterns[{i}]"
    if not isinstance(obj, dict):
        ctx.fail(path, f"expected an object, got {type(obj).__name__}")
    regex = obj.get("regex")
    if not isinstance(regex, str) or not regex:
        ctx.fail(f"{path}.regex", f"expected a non-empty string, got {regex!r}")
    compiled, layers = parse_name_pattern(ctx, path, regex, obj.get("layers"))
    sched = _parse_schedule(ctx, path, obj)
    return PatternEntry(index=i, regex=regex, compiled=compiled, layers=layers, schedule=sched,
                        op_type=_opt_str(ctx, path, obj, "op_type"),
                        group=_opt_str(ctx, path, obj, "group"),
                        lower_bound=_opt_num(ctx, path, obj, "lower_bound"),
                        bound_kind=_opt_str(ctx, path, obj, "bound_kind"), raw=obj)


def read_json(path_or_obj, what: str):
    """Return ``(document, source_name)`` from a path, a JSON string path-like, or a dict."""
    if isinstance(path_or_obj, dict):
        return path_or_obj, f"<{what} object>"
    if isinstance(path_or_obj, (str, os.PathLike)):
        path = os.fspath(path_or_obj)
        try:
            with open(path, "r", encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise ConfigError(f"{path}: cannot read {what}: {e.strerror or e}") from e
        except UnicodeDecodeError as e:
            raise ConfigError(f"{path}: {what} is not valid UTF-8 (byte {e.start})") from e
        try:
            doc = json.loads(text, parse_constant=_reject_constant)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}: "
                              f"{e.msg}") from e
        except RecursionError as e:
            raise ConfigError(f"{path}: {what} is nested too deeply") from e
        except ValueError as e:  # e.g. an integer with more digits than Python converts
            raise ConfigError(f"{path}: invalid {what}: {e}") from e
        return doc, path
    raise TypeError(f"expected a path or a dict for the {what}, got {type(path_or_obj).__name__}")


def _reject_constant(token):
    # json.loads accepts NaN / Infinity, which are not JSON; refuse them.
    raise ConfigError(f"non-standard JSON constant {token} (coefficients must be finite)")


def load_ns_config(path_or_obj) -> NSConfig:
    """Load and validate a ``muspec.ns_config`` version 1 document.

    ``path_or_obj`` is a file path or an already-parsed dict (an :class:`NSConfig` is returned
    unchanged). Raises :class:`ConfigError` naming the file and field on any problem.
    """
    if isinstance(path_or_obj, NSConfig):
        return path_or_obj
    doc, source = read_json(path_or_obj, "ns_config")
    ctx = _Ctx(source)
    _check_format(ctx, doc, NS_CONFIG_FORMAT)

    params_obj = doc.get("parameters")
    if params_obj is None:
        params_obj = {}
    if not isinstance(params_obj, dict):
        ctx.fail("parameters", f"expected an object keyed by parameter name, "
                               f"got {type(params_obj).__name__}")
    parameters: Dict[str, ParameterEntry] = {}
    for name, obj in params_obj.items():
        path = f"parameters[{json.dumps(name)}]"
        if not name:
            ctx.fail(path, "empty parameter name")
        entry = _parse_entry(ctx, path, name, obj)
        cname = canonical_name(name)
        if cname in parameters:
            ctx.fail(path, f"duplicates parameters[{json.dumps(parameters[cname].name)}] once "
                           f"wrapper prefixes are stripped (both are {cname!r})")
        parameters[cname] = entry

    pats_obj = doc.get("patterns")
    if pats_obj is None:
        pats_obj = []
    if not isinstance(pats_obj, list):
        ctx.fail("patterns", f"expected a list, got {type(pats_obj).__name__}")
    patterns = [_parse_pattern(ctx, i, p) for i, p in enumerate(pats_obj)]

    default = doc.get("default")
    if default is not None:
        default = _parse_entry(ctx, "default", None, default)

    prov = doc.get("provenance")
    if prov is not None and not isinstance(prov, dict):
        ctx.fail("provenance", f"expected an object, got {type(prov).__name__}")
    totals = doc.get("totals")
    if totals is not None and not isinstance(totals, dict):
        ctx.fail("totals", f"expected an object, got {type(totals).__name__}")
    if not parameters and not patterns and default is None:
        ctx.fail("parameters", "config has no parameters, no patterns and no default: "
                               "it assigns no schedule to anything")
    return NSConfig(source=source, parameters=parameters, patterns=patterns, default=default,
                    provenance=prov or {}, totals=totals or {}, raw=doc)
