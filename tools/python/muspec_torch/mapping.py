"""Mapping ``ns_config`` entries onto a model's parameters.

Rules (see ``docs/trainer-adapter.md``):

1. Names are compared after stripping wrapper prefixes (``_orig_mod.`` from ``torch.compile``,
   ``module.`` from DDP/DataParallel), on both the model side and the config side.
2. A parameter gets the schedule of, in this order: the ``parameters`` entry with its exact
   name; the first ``patterns`` entry whose regex full-matches the name (``re.fullmatch``) and,
   when the pattern has ``layers: [first, last]``, whose first capture group is an integer in
   that range; the config's ``default``; the caller's ``fallback``.
3. Which parameters are handed to Muon: every *Muon-eligible* parameter (at least 2-D, not an
   embedding, not the output head) plus every parameter named exactly in ``parameters``.
   Embeddings are ``nn.Embedding`` weights (when a module is given) or names containing
   ``embed``; the head is a name containing ``lm_head`` or whose module is called ``head``.
4. Errors (all reported together in one :class:`MappingError`): config names that match no model
   parameter, selected parameters with no schedule, shape mismatches against ``shape``, and
   exactly-listed parameters with fewer than 2 dimensions. Close names are suggested (difflib).
"""

import difflib
import re
import math
import warnings
from dataclasses import dataclass, field
from typing import Callable, Iterable, List, Optional, Sequence, Tuple, Union

import torch

from .config import (DEFAULT_EPSILON, ConfigError, NSConfig, Schedule, canonical_name,
                     load_ns_config, _parse_schedule, _Ctx)


class MappingError(ValueError):
    """The config and the model's parameters do not fit together.

    Attributes list the problems: ``unknown_config_names`` (config name, suggestions),
    ``unassigned`` (model name, suggestions), ``shape_mismatches`` (name, config shape, model
    shape) and ``not_matrices`` (name, shape).
    """

    def __init__(self, message, unknown_config_names=(), unassigned=(), shape_mismatches=(),
                 not_matrices=()):
        super().__init__(message)
        self.unknown_config_names = list(unknown_config_names)
        self.unassigned = list(unassigned)
        self.shape_mismatches = list(shape_mismatches)
        self.not_matrices = list(not_matrices)


class UnusedPatternWarning(UserWarning):
    """A ``patterns`` entry of the config matched no parameter of the model."""


class DefaultScheduleWarning(UserWarning):
    """Muon parameters that the config does not list get its default (or the fallback) schedule;
    issued once per mapping, naming them."""


@dataclass
class Assignment:
    """The schedule chosen for one parameter."""

    name: str                 # the model's name (with any wrapper prefix)
    canonical: str            # the name without wrapper prefixes
    param: torch.Tensor = field(repr=False)
    schedule: Schedule
    source: str               # "exact", "pattern[i]", "default" or "fallback"
    batched: bool = False     # NS per matrix of a >= 3-D stack (entry's ``matrices``)


@dataclass
class ParameterMapping:
    """Result of :func:`map_parameters`.

    ``assignments`` are the parameters for Muon (model order); ``others`` are the remaining
    ``(name, parameter)`` pairs (embeddings, head, vectors), for AdamW or similar.
    """

    config: Optional[NSConfig]
    assignments: List[Assignment]
    others: List[Tuple[str, torch.Tensor]]

    def muon_named_parameters(self) -> List[Tuple[str, torch.Tensor]]:
        return [(a.name, a.param) for a in self.assignments]

    def other_parameters(self) -> List[torch.Tensor]:
        return [p for _, p in self.others]

    def summary(self) -> str:
        """A plain-text table: name, shape, steps, source."""
        rows = [("parameter", "shape", "steps", "source")]
        for a in self.assignments:
            rows.append((a.name, "x".join(str(d) for d in a.param.shape),
                         str(a.schedule.steps), a.source))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


NamedParams = Union[torch.nn.Module, Iterable[Tuple[str, torch.Tensor]]]


def collect_named_parameters(model_or_named: NamedParams):
    """Return ``(named, embedding_names)`` from a module or an iterable of (name, tensor)."""
    embedding_names = set()
    if isinstance(model_or_named, torch.nn.Module):
        named = list(model_or_named.named_parameters())
        for mod_name, mod in model_or_named.named_modules():
            if isinstance(mod, (torch.nn.Embedding, torch.nn.EmbeddingBag)):
                embedding_names.add(canonical_name(f"{mod_name}.weight" if mod_name else "weight"))
    else:
        named = []
        for item in model_or_named:
            if (not isinstance(item, (tuple, list)) or len(item) != 2
                    or not isinstance(item[0], str) or not isinstance(item[1], torch.Tensor)):
                raise TypeError("expected an nn.Module or an iterable of (name, tensor) pairs, "
                                f"got an item {type(item).__name__}")
            named.append((item[0], item[1]))
    return named, embedding_names


_ROUTER = re.compile(r"(?:^|\.)(?:mlp|block_sparse_moe|feed_forward|moe)\.(?:gate|router|router\.gate|shared_expert_gate)"
                     r"(?:\.weight)?$")


def default_is_muon_eligible(canonical: str, param: torch.Tensor, embedding_names=()) -> bool:
    """Muon-eligible: >= 2 dims, not an embedding (module or name contains ``embed``), not the
    output head (name contains ``lm_head``, is Meta's ``output``, or its module is named
    ``head``), not a mixture-of-experts router (``mlp.gate``, ``block_sparse_moe.gate``,
    ``moe.router.gate``, ``shared_expert_gate``; the same names muspec's scan treats as routers)."""
    if param.dim() < 2:
        return False
    if canonical in embedding_names or "embed" in canonical:
        return False
    parts = canonical.split(".")
    if "lm_head" in canonical or canonical == "output.weight" or (len(parts) >= 2 and parts[-2] == "head"):
        return False
    return not _ROUTER.search(canonical)


def as_schedule(obj, what: str = "fallback") -> Schedule:
    """Turn ``obj`` into a :class:`Schedule`.

    Accepts a Schedule, the string ``"keller"`` (KJ quintic x5), a dict in the ns_config entry
    form (``steps``, ``coefficients``, optional ``normalization``), or a list of (a, b, c).
    """
    if isinstance(obj, Schedule):
        return obj
    if isinstance(obj, str):
        if obj.lower() in ("keller", "kj", "default"):
            return Schedule.keller()
        raise ValueError(f"{what}: unknown schedule name {obj!r} (known: 'keller')")
    if isinstance(obj, dict):
        return _parse_schedule(_Ctx(f"<{what}>"), "", obj)
    if isinstance(obj, (list, tuple)):
        try:
            sched = Schedule.from_coefficients(obj)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{what}: expected a list of (a, b, c) triples: {e}") from None
        if sched.steps < 1 or not all(len(t) == 3 and all(math.isfinite(v) for v in t)
                                      for t in sched.coefficients):
            raise ValueError(f"{what}: expected >= 1 triple of 3 finite numbers")
        return sched
    raise TypeError(f"{what}: cannot make a schedule from {type(obj).__name__}")


def _suggest(name: str, candidates: Sequence[str], n: int = 3) -> List[str]:
    return difflib.get_close_matches(name, candidates, n=n, cutoff=0.6)


def _fmt_suggestions(s: List[str]) -> str:
    return f" (did you mean: {', '.join(s)}?)" if s else ""


def _flat_shape(shape) -> Tuple[int, int]:
    rows = shape[0]
    cols = 1
    for d in shape[1:]:
        cols *= d
    return (rows, cols)


def _is_stack(entry, p) -> bool:
    """A >= 3-D tensor that the config analysed as ``matrices`` slices ``p[..., :, :]``."""
    if entry.matrices <= 1 or p.dim() < 3:
        return False
    lead = 1
    for d in p.shape[:-2]:
        lead *= d
    return lead == entry.matrices and (entry.shape is None
                                       or tuple(entry.shape) == tuple(p.shape[-2:]))


def _shape_fits(entry, p) -> bool:
    """Config ``shape`` vs the model: the full shape, its 2-D flattening, one slice of a stack
    (``matrices`` > 1, >= 3-D), or one part of a fused 2-D matrix (``matrices`` > 1: same
    column count, at most as many rows)."""
    if entry.shape is None:
        return True
    shape = tuple(p.shape)
    if entry.storage == "conv1d":  # the config reports (out, in); the Conv1D weight is (in, out)
        return entry.shape == tuple(reversed(shape))
    if entry.shape in (shape, _flat_shape(shape)):
        return True
    if entry.matrices > 1:
        if p.dim() >= 3:
            return _is_stack(entry, p)
        return (len(entry.shape) == 2 and entry.shape[1] == shape[1]
                and entry.shape[0] <= shape[0])
    return False


def map_parameters(model_or_named: NamedParams, config, *, fallback=None, select: str = "eligible",
                   check_shapes: bool = True,
                   is_eligible: Optional[Callable[[str, torch.Tensor], bool]] = None,
                   warn_unused_patterns: bool = True) -> ParameterMapping:
    """Assign an NS schedule to each Muon parameter of a model.

    Args:
        model_or_named: an ``nn.Module`` or an iterable of ``(name, parameter)``.
        config: an ``ns_config.json`` path, a parsed dict, or an :class:`NSConfig`.
        fallback: schedule for selected parameters that the config does not cover (see
            :func:`as_schedule`); without it, such parameters are an error.
        select: ``"eligible"`` (Muon-eligible parameters plus those listed by exact name) or
            ``"all"`` (every given parameter; all must be at least 2-D).
        check_shapes: compare ``shape`` of exact entries with the model (see
            :func:`_shape_fits`: a >2-D parameter also matches its 2-D flattening
            ``[rows, prod(rest)]``; with ``matrices`` > 1, one slice of a stack).
        is_eligible: override of :func:`default_is_muon_eligible`, called as ``f(canonical, p)``.
        warn_unused_patterns: warn (:class:`UnusedPatternWarning`) about patterns matching nothing.

    Returns:
        :class:`ParameterMapping`. Raises :class:`MappingError` listing every problem.
    """
    if select not in ("eligible", "all"):
        raise ValueError(f"select must be 'eligible' or 'all', got {select!r}")
    cfg = load_ns_config(config) if config is not None else None
    fb = as_schedule(fallback) if fallback is not None else None
    named, embedding_names = collect_named_parameters(model_or_named)

    seen = {}
    for name, _ in named:
        c = canonical_name(name)
        if c in seen:
            raise MappingError(f"model parameters {seen[c]!r} and {name!r} have the same name "
                               f"{c!r} once wrapper prefixes are stripped")
        seen[c] = name
    model_canon = list(seen.keys())
    source = cfg.source if cfg is not None else "<no config>"

    unknown = []
    if cfg is not None:
        for cname, entry in cfg.parameters.items():
            if cname not in seen:
                unknown.append((entry.name, _suggest(cname, model_canon)))

    assignments, others, unassigned, mismatches, not_matrices = [], [], [], [], []
    used_patterns = set()
    for name, p in named:
        c = canonical_name(name)
        listed = cfg is not None and c in cfg.parameters
        if select == "all" or listed:
            selected = True
        elif is_eligible is not None:
            selected = bool(is_eligible(c, p))
        else:
            selected = default_is_muon_eligible(c, p, embedding_names)
        if not selected:
            others.append((name, p))
            continue
        if p.dim() < 2:
            not_matrices.append((name, tuple(p.shape)))
            continue
        found = cfg.lookup(c) if cfg is not None else None
        batched = False
        if found is None:
            if fb is None:
                cands = list(cfg.parameters.keys()) if cfg is not None else []
                unassigned.append((name, _suggest(c, cands)))
                continue
            sched, src = fb, "fallback"
        else:
            sched, src, entry = found
            if src.startswith("pattern"):
                used_patterns.add(entry.index)
            if src == "exact":
                batched = _is_stack(entry, p)
                if check_shapes and not _shape_fits(entry, p):
                    mismatches.append((name, list(entry.shape), list(p.shape)))
                    continue
                if entry.matrices > 1 and not batched:
                    warnings.warn(f"{source}: {name}: the config analysed this tensor as "
                                  f"{entry.matrices} matrices (fused parts); NS is applied to "
                                  f"the whole {list(p.shape)} matrix", UserWarning, stacklevel=2)
        if src in ("default", "fallback") and p.dim() == 3:
            batched = True  # an expert bank or a qkv stack: NS per 2-D slice, never on the flattened bank
        assignments.append(Assignment(name=name, canonical=c, param=p, schedule=sched,
                                      source=src, batched=batched))

    lines = []
    if unknown:
        lines.append(f"{len(unknown)} config parameter name(s) match no model parameter:")
        lines += [f"  {n}{_fmt_suggestions(s)}" for n, s in unknown]
    if unassigned:
        lines.append(f"{len(unassigned)} Muon parameter(s) of the model have no entry, no "
                     f"matching pattern, and the config has no default (pass fallback= to "
                     f"accept them):")
        lines += [f"  {n}{_fmt_suggestions(s)}" for n, s in unassigned]
    if mismatches:
        lines.append(f"{len(mismatches)} shape mismatch(es) between config and model:")
        lines += [f"  {n}: config shape {cs}, model shape {ms}" for n, cs, ms in mismatches]
    if not_matrices:
        lines.append(f"{len(not_matrices)} parameter(s) selected for Muon have fewer than 2 "
                     f"dimensions:")
        lines += [f"  {n}: shape {list(s)}" for n, s in not_matrices]
    if lines:
        raise MappingError(f"{source}: config does not fit the model:\n" + "\n".join(lines),
                           unknown, unassigned, mismatches, not_matrices)

    defaulted = [a.name for a in assignments if a.source in ("default", "fallback")]
    if defaulted and cfg is not None:
        shown = ", ".join(defaulted[:5]) + (f", ... ({len(defaulted)} in all)" if len(defaulted) > 5 else "")
        warnings.warn(f"{source}: {len(defaulted)} Muon parameter(s) have no entry or pattern and get the "
                      f"{'default' if cfg.default is not None else 'fallback'} schedule: {shown}",
                      DefaultScheduleWarning, stacklevel=2)
    if cfg is not None and warn_unused_patterns:
        unused = [pat for pat in cfg.patterns if pat.index not in used_patterns]
        for pat in unused:
            warnings.warn(f"{source}: patterns[{pat.index}] (regex {pat.regex!r}, layers "
                          f"{list(pat.layers) if pat.layers else None}) matched no parameter "
                          f"that needed it", UnusedPatternWarning, stacklevel=2)
    return ParameterMapping(config=cfg, assignments=assignments, others=others)
