"""The oracle of the bf16 loop tests: what torch's own bf16 Newton–Schulz does to each direction."""
import numpy as np
import torch

import muspec_torch


def torch_bf16_gains(G, entry):
    """(s_i, u_i^T X v_i) for the matrix G (numpy array or tensor) and one ns_config entry, with X
    = muspec_torch.newton_schulz(G) in torch bf16 and (u_i, v_i) from numpy's float64 SVD of G."""
    sched = muspec_torch.Schedule(steps=entry["steps"], coefficients=tuple(tuple(c) for c in entry["coefficients"]),
                                  delta=entry["normalization"]["delta"], epsilon=entry["normalization"]["epsilon"])
    Gt = torch.as_tensor(G).float()
    X = muspec_torch.newton_schulz(Gt, sched, "bfloat16").double().numpy()
    Gd = Gt.double().numpy() if not isinstance(G, np.ndarray) else G.astype(np.float64)
    U, S, Vt = np.linalg.svd(Gd, full_matrices=False)
    return S / np.linalg.norm(Gd), np.einsum("ij,ik,kj->j", U, X, Vt.T)
