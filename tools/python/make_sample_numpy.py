#!/usr/bin/python3
"""Writes a tiny Llama-shaped "checkpoint" of momentum-like buffers with NumPy
(np.savez_compressed), for sample_data/. Deterministic.

Each 2-D buffer is a low-rank signal plus noise, with the noise level growing with depth, so
the layers have visibly different spectra; 1-D norms and an int64 step counter are included
because real checkpoints have them (muspec ignores them and says so).
"""
import pathlib
import sys

import numpy as np

HIDDEN, INTER, LAYERS = 128, 344, 2


def momentum_like(rng, rows, cols, rank, noise):
    signal = rng.standard_normal((rows, rank)) @ rng.standard_normal((rank, cols)) / np.sqrt(rank)
    return (signal + noise * rng.standard_normal((rows, cols))).astype(np.float32) * 1e-3


def main(out_dir):
    rng = np.random.default_rng(2026)
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for layer in range(LAYERS):
        noise = 0.05 * (layer + 1)
        p = f"model.layers.{layer}."
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            arrays[p + f"self_attn.{name}.weight"] = momentum_like(rng, HIDDEN, HIDDEN, 16, noise)
        arrays[p + "mlp.gate_proj.weight"] = momentum_like(rng, INTER, HIDDEN, 24, noise)
        arrays[p + "mlp.up_proj.weight"] = momentum_like(rng, INTER, HIDDEN, 24, noise)
        arrays[p + "mlp.down_proj.weight"] = momentum_like(rng, HIDDEN, INTER, 24, noise)
        arrays[p + "input_layernorm.weight"] = np.ones(HIDDEN, dtype=np.float32)
    arrays["step"] = np.array(1200, dtype=np.int64)
    np.savez_compressed(out / "momentum_buffers.npz", **arrays)
    # One matrix as a plain .npy, as users export single tensors.
    np.save(out / "lm_head_sample.npy", rng.standard_normal((64, 128)).astype(np.float32))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "sample_data/numpy")
