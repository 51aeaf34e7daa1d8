"""``muspec_torch.Muon``: Muon with a per-parameter, per-step Newton–Schulz schedule."""

import math
from typing import Optional

import torch

from .config import Schedule
from .mapping import ParameterMapping, map_parameters
from .newton_schulz import dtype_name, newton_schulz, resolve_dtype

ADJUST_LR_CHOICES = ("original", "match_rms_adamw", "none")


def adjusted_lr(lr: float, adjust_lr: Optional[str], shape) -> float:
    """Learning rate after the shape adjustment, with (A, B) the 2-D (flattened) shape.

    ``"original"`` (Keller Jordan, default, also torch.optim.Muon's default): lr*sqrt(max(1, A/B));
    ``"match_rms_adamw"`` (Moonshot): lr*0.2*sqrt(max(A, B)); ``"none"``/None: lr.
    """
    A = shape[0]
    B = 1
    for d in shape[1:]:
        B *= d
    if adjust_lr == "original":
        return lr * math.sqrt(max(1.0, A / B))
    if adjust_lr == "match_rms_adamw":
        return lr * 0.2 * math.sqrt(max(A, B))
    if adjust_lr in (None, "none"):
        return lr
    raise ValueError(f"adjust_lr must be one of {ADJUST_LR_CHOICES}, got {adjust_lr!r}")


class Muon(torch.optim.Optimizer):
    """Muon whose Newton–Schulz schedule comes from a muspec ``ns_config.json``, per parameter.

    Per parameter p with gradient g, each step (same algebra as torch.optim.Muon /
    KellerJordan/Muon):

    * momentum buffer (EMA form): ``B <- momentum*B + (1-momentum)*g``;
    * NS input: ``g.lerp(B, momentum)`` = ``(1-momentum)*g + momentum*B`` with Nesterov,
      else ``B``;
    * ``O = newton_schulz(input, schedule_of_p, ns_dtype)`` -- p's own steps, per-step (a, b, c),
      delta and epsilon (:func:`muspec_torch.newton_schulz`);
    * decoupled weight decay ``p <- p*(1 - lr*weight_decay)`` (unadjusted lr), then
      ``p <- p - adjusted_lr(lr, adjust_lr, shape)*O``.

    Parameters with more than 2 dimensions are flattened to ``(shape[0], prod(shape[1:]))`` for
    NS and for the lr adjustment; the update is reshaped back. Exception: when the config entry
    says the tensor was analysed as ``matrices`` = prod(shape[:-2]) slices of shape
    ``shape[-2:]`` (an expert bank or a stacked qkv), each slice gets its own NS (own norm) and
    the lr adjustment uses the slice shape (group key ``ns_batched``).

    Args:
        params: an ``nn.Module`` (its Muon-eligible parameters plus those listed by exact name in
            the config are optimized; see :func:`muspec_torch.map_parameters`), an iterable of
            ``(name, parameter)`` (all of them are optimized), or a :class:`ParameterMapping`.
        config: ``ns_config.json`` path, dict or :class:`NSConfig` (not needed with a mapping).
        lr: learning rate (default 0.02, KellerJordan/Muon's default).
        momentum: EMA momentum (default 0.95).
        nesterov: Nesterov-style NS input (default True).
        weight_decay: decoupled weight decay (default 0).
        ns_dtype: ``"bfloat16"`` (default; every NS product in bf16 as Muon kernels do) or
            ``"float32"`` (or ``"float64"``, for checks).
        adjust_lr: ``"original"`` (default), ``"match_rms_adamw"`` or ``"none"``.
        fallback: schedule for parameters the config does not cover (else an error); e.g.
            ``"keller"``, a :class:`Schedule`, or a list of (a, b, c) triples.
        select: ``"eligible"`` or ``"all"``; default ``"eligible"`` for a module and ``"all"``
            for an explicit list of named parameters.
        check_shapes: check the config's ``shape`` fields against the model.

    Parameter groups: one per distinct schedule, with the keys ``params``, ``param_names``,
    ``ns_steps``, ``ns_coefficients`` (list of [a, b, c]), ``ns_delta``, ``ns_eps``,
    ``ns_batched``, ``ns_dtype``, ``lr``, ``momentum``, ``nesterov``, ``weight_decay``,
    ``adjust_lr``. The mapping (which entry each parameter got) is kept in ``self.mapping``.
    """

    def __init__(self, params, config=None, *, lr: float = 0.02, momentum: float = 0.95,
                 nesterov: bool = True, weight_decay: float = 0.0, ns_dtype="bfloat16",
                 adjust_lr: str = "original", fallback=None, select: Optional[str] = None,
                 check_shapes: bool = True):
        if not lr >= 0.0:
            raise ValueError(f"lr must be >= 0, got {lr}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if not weight_decay >= 0.0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        if adjust_lr not in ADJUST_LR_CHOICES and adjust_lr is not None:
            raise ValueError(f"adjust_lr must be one of {ADJUST_LR_CHOICES}, got {adjust_lr!r}")
        ns_dtype = dtype_name(ns_dtype)

        if isinstance(params, ParameterMapping):
            mapping = params
        else:
            if select is None:
                select = "eligible" if isinstance(params, torch.nn.Module) else "all"
            if config is None and fallback is None:
                raise ValueError("muspec_torch.Muon needs a config (ns_config.json) or a fallback")
            mapping = map_parameters(params, config, fallback=fallback, select=select,
                                     check_shapes=check_shapes)
        if not mapping.assignments:
            raise ValueError("muspec_torch.Muon: no parameter to optimize")
        self.mapping = mapping
        defaults = dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay,
                        ns_dtype=ns_dtype, adjust_lr=adjust_lr)
        super().__init__(self.schedule_groups(mapping), defaults)

    @staticmethod
    def schedule_groups(mapping: ParameterMapping):
        """One parameter group per distinct schedule of ``mapping`` (without hyperparameters)."""
        by_schedule = {}
        for a in mapping.assignments:
            by_schedule.setdefault((a.schedule, a.batched), []).append(a)
        groups = []
        for (sched, batched), members in by_schedule.items():
            groups.append({
                "params": [a.param for a in members],
                "param_names": [a.name for a in members],
                "ns_steps": sched.steps,
                "ns_coefficients": [list(t) for t in sched.coefficients],
                "ns_delta": sched.delta,
                "ns_eps": sched.epsilon,
                "ns_batched": batched,
            })
        return groups

    @staticmethod
    def group_schedule(group) -> Schedule:
        """The :class:`Schedule` stored in a parameter group."""
        coeffs = tuple(tuple(float(v) for v in t) for t in group["ns_coefficients"])
        if len(coeffs) != group["ns_steps"]:
            raise ValueError(f"param group {group.get('param_names')}: ns_steps="
                             f"{group['ns_steps']} but {len(coeffs)} coefficient triples")
        return Schedule(group["ns_steps"], coeffs, float(group["ns_delta"]),
                        float(group["ns_eps"]))

    @torch.no_grad()
    def step(self, closure=None):
        """Perform one optimization step (optionally re-evaluating ``closure`` first)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            sched = self.group_schedule(group)
            dtype = resolve_dtype(group["ns_dtype"])
            lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if g.is_sparse:
                    raise RuntimeError("muspec_torch.Muon does not support sparse gradients")
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(g)
                buf = state["momentum_buffer"]
                buf.lerp_(g, 1.0 - mu)
                ns_in = g.lerp(buf, mu) if group["nesterov"] else buf
                batched = bool(group.get("ns_batched", False))
                update = newton_schulz(ns_in, sched, dtype, batched=batched)
                shape = p.shape[-2:] if batched else p.shape
                if wd != 0.0:
                    p.mul_(1.0 - lr * wd)
                p.add_(update.to(p.dtype), alpha=-adjusted_lr(lr, group["adjust_lr"], shape))
        return loss
