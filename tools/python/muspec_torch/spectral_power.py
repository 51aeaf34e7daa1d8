"""The spectral family U S^p V^T in PyTorch: the iterations muspec's ``recommend --power`` plans for.

``spectral_power(O, spec, steps)`` computes ``U diag(sigma^p) V^T`` of a matrix without an SVD, op
for op as muspec's matrix check (``lib/ns/spectral_simulate.cpp``) and the paper's code
("Delving into Muon and Beyond", arXiv 2602.04669, ``Ocram7/BeyondMuon``):

* ``coupled-newton`` (p = 0 or 2^-k): A = G + (abs + rel*tr(G)/n) I, Y = A/||A||_F, Z = I, then
  ``steps`` times T = (3I - ZY)/2, Y <- YT, Z <- TZ (re-symmetrized every max(1, min(steps//3, 5))
  steps and at the end); returns sqrt(s) Y ~ A^(1/2) and Z/sqrt(s) ~ A^(-1/2). p = 1/2 is
  O (G^(-1/2))^(1/2) (two calls); p = 2^-k applies the p = 1/2 map k times; p = 0 is O G^(-1/2).
* ``guo-higham`` (any rational p): the coupled inverse q-th root X <- XT, M <- T^q M,
  T = ((q+1)I - M)/q, then O (G^(-1/q))^j with j/q = (1 - p)/2.

G is the smaller Gram (wide matrices are transposed first). Products run in ``dtype`` (float32
by default, as the paper; pass float64 for checks). See docs/spectral-family.md.
"""

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Dict, Optional, Tuple

import torch

from .config import ConfigError, canonical_name, read_json

ITERATIONS = ("coupled-newton", "guo-higham")
INPUTS = ("momentum", "rms_normalized")
MAX_STEPS = 99


@dataclass(frozen=True)
class SpectralMapSpec:
    """One member of the family and the iteration that computes it (``spectral_map`` in a v2 config)."""

    power: Fraction
    iteration: str = "coupled-newton"
    absolute: float = 1e-6   # shift abs + rel * tr(G)/n added before every root
    relative: float = 1e-4
    tolerance: float = 1e-2
    input: str = "momentum"

    def __post_init__(self):
        if not 0 <= self.power <= 1:
            raise ValueError(f"power must lie in [0, 1], got {self.power}")
        if self.iteration not in ITERATIONS:
            raise ValueError(f"iteration must be one of {ITERATIONS}, got {self.iteration!r}")
        if self.iteration == "coupled-newton" and self.power not in (0, 1) and not _is_half_power(self.power):
            raise ValueError(f"coupled-newton computes p = 0 or 2^-k, not {self.power}; use guo-higham")
        if self.input not in INPUTS:
            raise ValueError(f"input must be one of {INPUTS}, got {self.input!r}")


def _is_half_power(p: Fraction) -> bool:
    return p.numerator == 1 and p.denominator & (p.denominator - 1) == 0


def _symmetrize_every(steps: int) -> int:
    return max(1, min(steps // 3, 5))


def _regularize(a: torch.Tensor, spec: SpectralMapSpec):
    n = a.shape[-1]
    shift = spec.absolute + spec.relative * torch.trace(a) / n
    a = a + shift * torch.eye(n, dtype=a.dtype, device=a.device)
    norm = torch.linalg.norm(a)  # Frobenius, as the paper's torch.norm(A, p=2) on a matrix
    return a / norm, norm


def _sym(x: torch.Tensor) -> torch.Tensor:
    return (x + x.T) * 0.5


def coupled_newton(a: torch.Tensor, steps: int, spec: SpectralMapSpec) -> Tuple[torch.Tensor, torch.Tensor]:
    """(~A^(1/2), ~A^(-1/2)) of a symmetric A after the shift, by the coupled Newton iteration."""
    y, norm = _regularize(a, spec)
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    z = eye.clone()
    every = _symmetrize_every(steps)
    for idx in range(steps):
        t = (3.0 * eye - z @ y) * 0.5
        y = y @ t
        z = t @ z
        if idx > 0 and idx % every == 0:
            y, z = _sym(y), _sym(z)
    y, z = _sym(y), _sym(z)
    root = torch.sqrt(norm)
    return y * root, z / root


def _matrix_power(x: torch.Tensor, e: int) -> torch.Tensor:
    result, base = None, x
    while e > 0:
        if e & 1:
            result = base if result is None else result @ base
        e >>= 1
        if e > 0:
            base = base @ base
    return result if result is not None else torch.eye(x.shape[-1], dtype=x.dtype, device=x.device)


def guo_higham(a: torch.Tensor, q: int, steps: int, spec: SpectralMapSpec) -> torch.Tensor:
    """~A^(-1/q) of a symmetric A after the shift (Guo & Higham, SIMAX 28, 2006)."""
    m, norm = _regularize(a, spec)
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    x = eye.clone()
    every = _symmetrize_every(steps)
    for idx in range(steps):
        t = ((q + 1) * eye - m) / q
        x = x @ t
        m = _matrix_power(t, q) @ m
        if idx > 0 and idx % every == 0:
            x, m = _sym(x), _sym(m)
    return _sym(x) * norm ** (-1.0 / q)


def spectral_power(o: torch.Tensor, spec: SpectralMapSpec, steps: int, dtype=torch.float32) -> torch.Tensor:
    """``U diag(sigma^p) V^T`` of the 2-D ``o`` by ``steps`` iterations per root call, in ``dtype``.

    Returns a tensor of ``o``'s shape in ``dtype``. p = 1 returns ``o`` itself (no iteration).
    """
    if o.dim() != 2:
        raise ValueError(f"spectral_power needs a matrix, got shape {tuple(o.shape)}")
    if spec.power == 1:
        return o.to(dtype)
    if not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must lie in [1, {MAX_STEPS}], got {steps}")
    x = o.to(dtype)
    wide = x.shape[1] > x.shape[0]
    if wide:
        x = x.T
    if spec.iteration == "coupled-newton":
        if spec.power == 0:
            out = x @ coupled_newton(x.T @ x, steps, spec)[1]
        else:
            out = x
            for _ in range(int(math.log2(spec.power.denominator))):
                inv_sqrt = coupled_newton(out.T @ out, steps, spec)[1]
                out = out @ coupled_newton(inv_sqrt, steps, spec)[0]
    else:
        r = (1 - spec.power) / 2  # G^(-r) = (G^(-1/q))^j
        out = x @ _matrix_power(guo_higham(x.T @ x, r.denominator, steps, spec), r.numerator)
    return out.T if wide else out


# ------------------------------------------------------------------------- version 2 configs

@dataclass(frozen=True)
class SpectralConfig:
    """A ``muspec.ns_config`` version 2 document: one family member, steps per parameter."""

    spec: SpectralMapSpec
    default_steps: int
    steps: Dict[str, int]     # canonical parameter name -> iterations per root call
    source: str

    def steps_for(self, name: str) -> Optional[int]:
        """Steps of the parameter ``name`` (wrapper prefixes ignored), else None."""
        return self.steps.get(canonical_name(name))


def _fail(source: str, path: str, msg: str):
    raise ConfigError(f"{source}: {path}: {msg}")


def _parse_steps(source, path, obj, identity: bool) -> int:
    if not isinstance(obj, dict):
        _fail(source, path, f"expected an object, got {type(obj).__name__}")
    k = obj.get("steps")
    if not isinstance(k, int) or isinstance(k, bool):
        _fail(source, f"{path}.steps", f"expected an integer, got {k!r}")
    if identity and k != 0:
        _fail(source, f"{path}.steps", f"p = 1 needs no iteration (steps 0), got {k}")
    if not identity and not 1 <= k <= MAX_STEPS:
        _fail(source, f"{path}.steps", f"{k} outside [1, {MAX_STEPS}]")
    return k


def _parse_spec(source, m) -> SpectralMapSpec:
    if not isinstance(m, dict):
        _fail(source, "spectral_map", "missing object")
    try:
        power = Fraction(m.get("power", ""))
    except (ValueError, TypeError, ZeroDivisionError):
        _fail(source, "spectral_map.power", f"not a fraction: {m.get('power')!r}")
    reg = m.get("regularization")
    if not isinstance(reg, dict):
        _fail(source, "spectral_map.regularization", "missing object {absolute, relative}")
    try:
        return SpectralMapSpec(power=power, iteration=m.get("iteration"), absolute=float(reg["absolute"]),
                               relative=float(reg["relative"]), tolerance=float(m["tolerance"]),
                               input=m.get("input"))
    except (KeyError, TypeError, ValueError) as e:
        _fail(source, "spectral_map", str(e))


def load_spectral_config(path_or_obj) -> SpectralConfig:
    """Load a ``muspec.ns_config`` version 2 document (``muspec recommend --power P``)."""
    doc, source = read_json(path_or_obj, "ns_config")
    if not isinstance(doc, dict) or doc.get("format") != "muspec.ns_config":
        raise ConfigError(f"{source}: format: expected 'muspec.ns_config'")
    if doc.get("version") != 2:
        raise ConfigError(f"{source}: version: expected 2 (a spectral-family config from `muspec recommend "
                          f"--power`), got {doc.get('version')!r}; version 1 is read by load_ns_config")
    spec = _parse_spec(source, doc.get("spectral_map"))
    identity = spec.power == 1
    default = _parse_steps(source, "default", doc.get("default"), identity)
    params = doc.get("parameters")
    if not isinstance(params, dict):
        _fail(source, "parameters", "expected an object")
    steps = {canonical_name(n): _parse_steps(source, f"parameters.{n}", e, identity) for n, e in params.items()}
    return SpectralConfig(spec=spec, default_steps=default, steps=steps, source=source)


# ------------------------------------------------------------------------- the optimizer

class SpectralMuon(torch.optim.Optimizer):
    """Updates ``U S^p V^T`` of each matrix's momentum (or RMS-normalized) input, with the
    iteration count per parameter from a version 2 ``ns_config.json`` (``muspec recommend --power``).

    Per parameter with gradient g, each step:

    * ``input = "momentum"`` (the config's ``spectral_map.input``): B <- mu*B + (1-mu)*g (EMA, as
      Muon), NS input g.lerp(B, mu) with Nesterov, else B;
    * ``input = "rms_normalized"``: Adam's moments m, v (betas), m_hat/(sqrt(v_hat) + eps);
    * ``update = spectral_power(input, spec, steps_of_parameter, dtype)``; decoupled weight decay;
      ``p <- p - adjusted_lr(lr, adjust_lr, shape) * update``. The update's overall scale is the
      optimizer's business (the paper leaves it to lr); muspec plans only the iteration count.

    Args:
        params: an ``nn.Module`` (its Muon-eligible parameters: >= 2-D, no embedding, head or router)
            or an iterable of ``(name, parameter)``.
        config: path, dict or :class:`SpectralConfig`.
        strict: a parameter missing from the config is an error (default); else it gets the
            config's default steps.
    """

    def __init__(self, params, config, *, lr: float = 0.02, momentum: float = 0.95, nesterov: bool = True,
                 betas=(0.9, 0.95), eps: float = 1e-8, weight_decay: float = 0.0, dtype=torch.float32,
                 adjust_lr: str = "original", strict: bool = True):
        from .mapping import collect_named_parameters, default_is_muon_eligible
        self.config = config if isinstance(config, SpectralConfig) else load_spectral_config(config)
        named, embeddings = collect_named_parameters(params)
        if isinstance(params, torch.nn.Module):
            named = [(n, p) for n, p in named if default_is_muon_eligible(canonical_name(n), p, embeddings)]
        groups = {}
        for name, p in named:
            if p.dim() != 2:
                raise ValueError(f"{name}: SpectralMuon handles matrices, got shape {tuple(p.shape)}")
            k = self.config.steps_for(name)
            if k is None:
                if strict:
                    raise ValueError(f"{name}: not in {self.config.source} (pass strict=False to use its default "
                                     f"{self.config.default_steps} steps)")
                k = self.config.default_steps
            groups.setdefault(k, []).append((name, p))
        if not groups:
            raise ValueError("SpectralMuon: no parameter to optimize")
        param_groups = [{"params": [p for _, p in ps], "param_names": [n for n, _ in ps], "spectral_steps": k}
                        for k, ps in sorted(groups.items())]
        defaults = dict(lr=lr, momentum=momentum, nesterov=nesterov, betas=tuple(betas), eps=eps,
                        weight_decay=weight_decay, adjust_lr=adjust_lr)
        self.dtype = dtype
        super().__init__(param_groups, defaults)

    def _input(self, group, p, g):
        state = self.state[p]
        if self.config.spec.input == "momentum":
            buf = state.setdefault("momentum_buffer", torch.zeros_like(g))
            buf.lerp_(g, 1.0 - group["momentum"])
            return g.lerp(buf, group["momentum"]) if group["nesterov"] else buf
        b1, b2 = group["betas"]
        state["step"] = state.get("step", 0) + 1
        m = state.setdefault("exp_avg", torch.zeros_like(g))
        v = state.setdefault("exp_avg_sq", torch.zeros_like(g))
        m.lerp_(g, 1.0 - b1)
        v.mul_(b2).addcmul_(g, g, value=1.0 - b2)
        t = state["step"]
        return (m / (1.0 - b1 ** t)) / ((v / (1.0 - b2 ** t)).sqrt() + group["eps"])

    @torch.no_grad()
    def step(self, closure=None):
        from .optimizer import adjusted_lr
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                update = spectral_power(self._input(group, p, p.grad), self.config.spec, group["spectral_steps"],
                                        self.dtype)
                if group["weight_decay"] != 0.0:
                    p.mul_(1.0 - group["lr"] * group["weight_decay"])
                p.add_(update.to(p.dtype), alpha=-adjusted_lr(group["lr"], group["adjust_lr"], p.shape))
        return loss
