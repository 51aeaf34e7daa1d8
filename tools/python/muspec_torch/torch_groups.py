"""Parameter groups for ``torch.optim.Muon`` (PyTorch >= 2.9) from muspec configs.

``torch.optim.Muon`` takes exactly one (a, b, c) triple per parameter group, reused at every
step (group keys ``ns_coefficients``, ``ns_steps``, ``eps``; also ``lr``, ``weight_decay``,
``momentum``, ``nesterov``, ``adjust_lr_fn``), accepts only 2-D parameters, normalizes by
``max(||X||_F, eps)`` (a clamp) and has no ``delta``. So per-step schedules cannot be expressed;
``muspec recommend --format torch-groups`` writes the closest single-triple groups and marks them
``"exact": false`` with an ``approximation`` text. This module reads that file.

:func:`build_torch_muon_groups` is pure group-building logic (works with any torch);
:func:`torch_muon_param_groups` additionally checks that ``torch.optim.Muon`` exists and that
the keyword arguments are accepted by its constructor.
"""

import inspect
import math
import re
import warnings
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch

from .config import (ConfigError, NSConfig, TORCH_GROUPS_FORMAT, NS_CONFIG_FORMAT, _Ctx,
                     _check_format, _is_finite, _is_int, _is_number, _parse_triple, canonical_name,
                     load_ns_config, parse_name_pattern, read_json)
from .safe_regex import MAX_NAME_LENGTH
from .mapping import (MappingError, _fmt_suggestions, _suggest, collect_named_parameters,
                      default_is_muon_eligible, map_parameters)

#: torch.optim.Muon refuses ns_steps >= 100.
TORCH_MAX_NS_STEPS = 99


class InexactScheduleWarning(UserWarning):
    """A torch-groups group approximates a per-step schedule by one (a, b, c) triple."""


@dataclass
class TorchGroupSpec:
    """One group of a ``muspec.torch_groups`` file."""

    index: int
    params: List[str]
    ns_coefficients: Tuple[float, float, float]
    ns_steps: int
    eps: float
    exact: bool
    approximation: Optional[str]
    patterns: List[Tuple[str, "re.Pattern", Optional[Tuple[int, int]]]] = None

    def pattern_matches(self, canonical: str) -> bool:
        """Whether a name matches one of the group's ``patterns`` (regex full match, first
        capture group within ``layers``)."""
        if len(canonical) > MAX_NAME_LENGTH:  # bounds the matching time (safe_regex.py)
            return False
        for _, rx, layers in self.patterns or ():
            m = rx.fullmatch(canonical)
            if m is None:
                continue
            if layers is None:
                return True
            try:
                if layers[0] <= int(m.group(1)) <= layers[1]:
                    return True
            except (TypeError, ValueError):
                continue
        return False


@dataclass
class TorchGroupsConfig:
    """A validated ``muspec.torch_groups`` document."""

    source: str
    groups: List[TorchGroupSpec]
    raw: dict


def load_torch_groups(path_or_obj) -> TorchGroupsConfig:
    """Load and validate a ``muspec.torch_groups`` version 1 file (path or dict)."""
    if isinstance(path_or_obj, TorchGroupsConfig):
        return path_or_obj
    doc, source = read_json(path_or_obj, "torch_groups")
    ctx = _Ctx(source)
    _check_format(ctx, doc, TORCH_GROUPS_FORMAT)
    groups_obj = doc.get("groups")
    if not isinstance(groups_obj, list) or not groups_obj:
        ctx.fail("groups", f"expected a non-empty list of groups, got {groups_obj!r}")
    groups, owner = [], {}
    for i, g in enumerate(groups_obj):
        path = f"groups[{i}]"
        if not isinstance(g, dict):
            ctx.fail(path, f"expected an object, got {type(g).__name__}")
        names = g.get("params")
        pats = _parse_group_patterns(ctx, path, g.get("patterns"))
        if names is None and pats:
            names = []
        if not isinstance(names, list) or not (names or pats):
            ctx.fail(f"{path}.params", f"expected a non-empty list of parameter names "
                                       f"(or a non-empty 'patterns' list), got {names!r}")
        for j, n in enumerate(names):
            if not isinstance(n, str) or not n:
                ctx.fail(f"{path}.params[{j}]", f"expected a parameter name, got {n!r}")
            c = canonical_name(n)
            if c in owner:
                ctx.fail(f"{path}.params[{j}]", f"{n!r} is already in groups[{owner[c]}]")
            owner[c] = i
        coeffs = _parse_triple(ctx, f"{path}.ns_coefficients", g.get("ns_coefficients"))
        steps = g.get("ns_steps")
        if not _is_int(steps) or not 1 <= steps <= TORCH_MAX_NS_STEPS:
            ctx.fail(f"{path}.ns_steps", f"expected an integer in [1, {TORCH_MAX_NS_STEPS}], "
                                         f"got {steps!r}")
        eps = g.get("eps", 1e-7)
        if eps is None:
            eps = 1e-7
        if not _is_number(eps) or not _is_finite(eps) or eps < 0:
            ctx.fail(f"{path}.eps", f"expected a finite number >= 0, got {eps!r}")
        exact = g.get("exact", True)
        if not isinstance(exact, bool):
            ctx.fail(f"{path}.exact", f"expected true or false, got {exact!r}")
        approx = g.get("approximation")
        if approx is not None and not isinstance(approx, str):
            ctx.fail(f"{path}.approximation", f"expected a string or null, got {approx!r}")
        groups.append(TorchGroupSpec(i, list(names), coeffs, steps, float(eps), exact, approx,
                                     pats))
    return TorchGroupsConfig(source=source, groups=groups, raw=doc)


def _parse_group_patterns(ctx, path, pats):
    """Optional ``patterns: [{"regex": ..., "layers": [first, last]}]`` of a group: names of
    an extrapolated config that could not be expanded to literal parameter names."""
    if pats is None:
        return []
    if not isinstance(pats, list):
        ctx.fail(f"{path}.patterns", f"expected a list, got {pats!r}")
    out = []
    for k, pat in enumerate(pats):
        pp = f"{path}.patterns[{k}]"
        if not isinstance(pat, dict) or not isinstance(pat.get("regex"), str) or not pat["regex"]:
            ctx.fail(pp, f"expected an object with a non-empty 'regex', got {pat!r}")
        rx, layers = parse_name_pattern(ctx, pp, pat["regex"], pat.get("layers"))
        out.append((pat["regex"], rx, layers))
    return out


def _groups_from_ns_config(cfg: NSConfig, named) -> TorchGroupsConfig:
    """Express an ns_config as torch groups when every schedule is uniform with delta = 0."""
    mapping = map_parameters(named, cfg)
    bad = [a.name for a in mapping.assignments
           if not a.schedule.is_uniform or a.schedule.delta != 0.0]
    if bad:
        raise ConfigError(
            f"{cfg.source}: {len(bad)} parameter(s) have per-step schedules or delta != 0, which "
            f"torch.optim.Muon (one (a, b, c) per group, no delta) cannot express: "
            f"{', '.join(bad[:8])}{' ...' if len(bad) > 8 else ''}. Use muspec_torch.Muon, or "
            f"write a torch-groups file with `muspec recommend --format torch-groups`.")
    by_key = {}
    for a in mapping.assignments:
        key = (a.schedule.coefficients[0], a.schedule.steps, a.schedule.epsilon)
        by_key.setdefault(key, []).append(a.name)
    groups = [TorchGroupSpec(i, names, k[0], k[1], k[2], True, None)
              for i, (k, names) in enumerate(by_key.items())]
    return TorchGroupsConfig(source=cfg.source, groups=groups, raw={})


def build_torch_muon_groups(model_or_named, config, *, strict: bool = True,
                            with_names: bool = False, warn_inexact: bool = True,
                            **muon_kwargs) -> List[dict]:
    """Build ``torch.optim.Muon`` parameter groups (list of dicts) without needing that class.

    Args:
        model_or_named: ``nn.Module`` or iterable of ``(name, parameter)``.
        config: a ``muspec.torch_groups`` file/dict, or a ``muspec.ns_config`` whose schedules
            are all uniform with ``delta = 0`` (anything else raises :class:`ConfigError`).
        strict: raise when a Muon-eligible parameter of the model is in no group.
        with_names: add ``param_names`` to each group (torch >= 2.6 understands it).
        warn_inexact: emit :class:`InexactScheduleWarning` for groups with ``exact: false``.
        **muon_kwargs: extra keys copied into every group (``lr``, ``weight_decay``, ...).

    Each group: ``{"params": [...], "ns_coefficients": (a, b, c), "ns_steps": k, "eps": e,
    **muon_kwargs}``. Raises :class:`MappingError` (names unknown to the model, with
    suggestions; parameters that are not 2-D; eligible parameters left out when ``strict``).
    """
    clash = {"params", "ns_coefficients", "ns_steps", "eps"} & set(muon_kwargs)
    if clash:
        raise TypeError(f"{sorted(clash)} come from the config file and cannot be passed as "
                        f"keyword arguments")
    if isinstance(config, NSConfig) or (isinstance(config, dict)
                                        and config.get("format") == NS_CONFIG_FORMAT):
        named, _ = collect_named_parameters(model_or_named)
        tg = _groups_from_ns_config(load_ns_config(config), named)
        model_or_named = named
    elif isinstance(config, str) or hasattr(config, "__fspath__"):
        doc, _ = read_json(config, "config")
        if isinstance(doc, dict) and doc.get("format") == NS_CONFIG_FORMAT:
            named, _ = collect_named_parameters(model_or_named)
            cfg = load_ns_config(config)
            tg = _groups_from_ns_config(cfg, named)
            model_or_named = named
        else:
            tg = load_torch_groups(config)
    else:
        tg = load_torch_groups(config)

    named, embedding_names = collect_named_parameters(model_or_named)
    by_canon = {canonical_name(n): (n, p) for n, p in named}
    canon_list = list(by_canon)

    unknown, not_2d, groups, taken, members, used = [], [], [], set(), [], set()
    for spec in tg.groups:
        params, names = [], []
        for n in spec.params:
            c = canonical_name(n)
            if c not in by_canon:
                unknown.append((n, _suggest(c, canon_list)))
                continue
            model_name, p = by_canon[c]
            if p.dim() != 2:
                not_2d.append((model_name, tuple(p.shape)))
                continue
            params.append(p)
            names.append(model_name)
            taken.add(c)
        members.append((params, names))

    # names not listed literally: the first group with a matching pattern takes them
    listed = {canonical_name(n) for spec in tg.groups for n in spec.params}
    for c, (model_name, p) in by_canon.items():
        if c in listed or p.dim() != 2:
            continue
        for spec, (params, names) in zip(tg.groups, members):
            if spec.pattern_matches(c):
                params.append(p)
                names.append(model_name)
                taken.add(c)
                used.add(spec.index)
                break
    for spec in tg.groups:
        if spec.patterns and spec.index not in used and not spec.params:
            warnings.warn(f"{tg.source}: groups[{spec.index}] patterns match no 2-D parameter "
                          f"of the model", UserWarning, stacklevel=2)

    for spec, (params, names) in zip(tg.groups, members):
        g = {"params": params, "ns_coefficients": tuple(spec.ns_coefficients),
             "ns_steps": spec.ns_steps, "eps": spec.eps}
        if with_names:
            g["param_names"] = names
        g.update(muon_kwargs)
        groups.append(g)
        if warn_inexact and not spec.exact:
            warnings.warn(f"{tg.source}: groups[{spec.index}] ({len(params)} parameter(s)) "
                          f"approximates a per-step schedule with one triple: "
                          f"{spec.approximation or 'no details given'}",
                          InexactScheduleWarning, stacklevel=2)

    missing = []
    if strict:
        for c, (n, p) in by_canon.items():
            if c not in taken and default_is_muon_eligible(c, p, embedding_names):
                missing.append((n, []))
    lines = []
    if unknown:
        lines.append(f"{len(unknown)} group parameter name(s) match no model parameter:")
        lines += [f"  {n}{_fmt_suggestions(s)}" for n, s in unknown]
    if not_2d:
        lines.append(f"{len(not_2d)} parameter(s) are not 2-D (torch.optim.Muon accepts only "
                     f"2-D parameters):")
        lines += [f"  {n}: shape {list(s)}" for n, s in not_2d]
    if missing:
        lines.append(f"{len(missing)} Muon-eligible model parameter(s) are in no group "
                     f"(pass strict=False to leave them to another optimizer):")
        lines += [f"  {n}" for n, _ in missing]
    if lines:
        raise MappingError(f"{tg.source}: groups do not fit the model:\n" + "\n".join(lines),
                           unknown_config_names=unknown, unassigned=missing,
                           not_matrices=not_2d)
    return [g for g in groups if g["params"]]


def torch_muon_available() -> bool:
    """Whether this torch has ``torch.optim.Muon`` (PyTorch >= 2.9)."""
    return hasattr(torch.optim, "Muon")


def torch_muon_param_groups(model_or_named_params, config_path_or_obj, **muon_kwargs):
    """Parameter groups for ``torch.optim.Muon(groups)``; see :func:`build_torch_muon_groups`.

    Raises ``RuntimeError`` naming the installed torch version when ``torch.optim.Muon`` does
    not exist (it was added in PyTorch 2.9), and ``TypeError`` when a keyword argument is not a
    parameter of the installed ``torch.optim.Muon``.

    Example::

        groups = torch_muon_param_groups(model, "torch_groups.json", lr=0.02, weight_decay=0.0)
        opt = torch.optim.Muon(groups)
    """
    if not torch_muon_available():
        raise RuntimeError(f"torch.optim.Muon is not available in torch {torch.__version__} "
                           f"(it was added in PyTorch 2.9); use muspec_torch.Muon instead, "
                           f"which also applies per-step schedules")
    accepted = set(inspect.signature(torch.optim.Muon.__init__).parameters) - {"self", "params"}
    unknown = sorted(set(muon_kwargs) - accepted - {"with_names", "strict", "warn_inexact"})
    if unknown:
        raise TypeError(f"torch.optim.Muon in torch {torch.__version__} does not accept "
                        f"{unknown}; accepted: {sorted(accepted)}")
    return build_torch_muon_groups(model_or_named_params, config_path_or_obj, **muon_kwargs)
