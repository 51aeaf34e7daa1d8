"""The Newton–Schulz (NS) iteration with a per-step coefficient schedule."""

import torch

from .config import Schedule

_DTYPES = {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float32": torch.float32,
           "fp32": torch.float32, "f32": torch.float32, "float64": torch.float64,
           "fp64": torch.float64, "float16": torch.float16, "fp16": torch.float16}


def resolve_dtype(dtype) -> torch.dtype:
    """Map ``"bfloat16"``/``"float32"``/``"float64"``/``"float16"`` (or a torch.dtype) to a dtype."""
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return _DTYPES[str(dtype).lower()]
    except KeyError:
        raise ValueError(f"unknown NS dtype {dtype!r}; use one of {sorted(_DTYPES)}") from None


def dtype_name(dtype) -> str:
    """Canonical string for a dtype (``"bfloat16"``, ``"float32"``, ...)."""
    return str(resolve_dtype(dtype)).replace("torch.", "")


def as_matrix(t: torch.Tensor) -> torch.Tensor:
    """View a >= 2-D tensor as the 2-D matrix NS acts on: ``(shape[0], prod(shape[1:]))``.

    This is how convolution filters (out, in, kh, kw) are treated by Keller Jordan's Muon.
    """
    if t.dim() < 2:
        raise ValueError(f"NS needs a tensor with >= 2 dimensions, got shape {list(t.shape)}")
    return t.reshape(t.shape[0], -1) if t.dim() > 2 else t


def newton_schulz(G: torch.Tensor, schedule: Schedule, dtype=torch.bfloat16,
                  batched: bool = False) -> torch.Tensor:
    """Approximate the polar factor of ``G`` with the per-step quintic ``schedule``.

    Steps:
      1. flatten ``G`` to 2-D (:func:`as_matrix`) and cast it to ``dtype``; with ``batched``
         (a >= 3-D tensor that is a stack of matrices, e.g. ``[E, out, in]`` expert banks or a
         ``[3, d, d]`` qkv stack) each matrix ``G[..., :, :]`` is instead treated separately,
         with its own norm;
      2. transpose when rows > cols, so the Gram matrix is min(m, n)^2;
      3. ``X0 = X / (||X||_F * (1 + delta) + epsilon)`` (the norm is accumulated in float32, or
         in float64 when ``dtype`` is float64, from the already-cast matrix);
      4. for each step t with (a, b, c) = ``schedule.coefficients[t]``:
         ``A = X X^T``; ``X <- a X + (b A + c A A) X``. Matrix products take ``dtype`` operands
         (bf16 storage; PyTorch accumulates them in float32), while the coefficients and the
         element-wise combinations are applied in the accumulation type (float32, float64 for
         a float64 run) and rounded to ``dtype`` once: a Python float times a bf16 tensor would
         round the coefficient itself to bf16 (3.4445 -> 3.4375), which is not the configured
         polynomial;
      5. transpose back and reshape to ``G.shape``.

    Each step maps every singular value s of X to a s + b s^3 + c s^5 and keeps the singular
    vectors. Returns a tensor of ``dtype`` and ``G.shape``.
    """
    dtype = resolve_dtype(dtype)
    if batched:
        if G.dim() < 3:
            raise ValueError(f"batched NS needs a >= 3-D tensor, got shape {list(G.shape)}")
        X = G.reshape(-1, G.shape[-2], G.shape[-1]).to(dtype)
    else:
        X = as_matrix(G).to(dtype).unsqueeze(0)
    transposed = X.size(-2) > X.size(-1)
    if transposed:
        X = X.transpose(-2, -1)
    acc = torch.float64 if dtype == torch.float64 else torch.float32
    Xa = X.to(acc)
    norm = Xa.pow(2).sum(dim=(-2, -1), keepdim=True).sqrt()
    denom = norm * (1.0 + schedule.delta) + schedule.epsilon
    # a zero gradient with epsilon = 0 gives a zero update, not NaN
    denom = torch.where(denom == 0, torch.ones_like(denom), denom)
    X = (Xa / denom).to(dtype)
    for a, b, c in schedule.coefficients:
        A = X @ X.transpose(-2, -1)                                  # dtype storage
        B = (b * A.to(acc) + c * (A @ A).to(acc)).to(dtype)          # scalars in acc, rounded once
        X = (a * X.to(acc) + (B @ X).to(acc)).to(dtype)
    if transposed:
        X = X.transpose(-2, -1)
    return X.reshape(G.shape)
