#!/usr/bin/python3
"""Train tiny Llama-style byte-level LMs with Muon + AdamW and write HF-Trainer-like checkpoints.

This produces muspec's real sample data (sample_data/runs/). Run it with Debian's interpreter,
which has python3-torch (1.13.1) and python3-numpy:

    /usr/bin/python3 tools/python/train_tiny_gpt.py --out sample_data/runs

Everything is deterministic: fixed seeds, torch.use_deterministic_algorithms(True), one intra-op
thread per process (runs may be trained in parallel worker processes; each worker is still
single-threaded, so the numbers do not depend on --jobs).

Model ("llama" family, Hugging Face parameter names and registration order)
  model.embed_tokens.weight (V, H)
  model.layers.{i}.self_attn.{q,k,v,o}_proj.weight (H, H)  -- no biases, MHA (kv heads = heads)
  model.layers.{i}.mlp.{gate,up}_proj.weight (I, H), model.layers.{i}.mlp.down_proj.weight (H, I)
  model.layers.{i}.input_layernorm.weight, model.layers.{i}.post_attention_layernorm.weight (H,)
  model.norm.weight (H,), lm_head.weight (V, H) -- untied
Pre-norm RMSNorm, rotary position embeddings (HF rotate_half convention), causal softmax
attention, SwiGLU MLP. Byte-level tokens (vocab 256), so no tokenizer is needed.

Optimizer: one optimizer object, modelled on KellerJordan/Muon's SingleDeviceMuonWithAuxAdam
(a torch.optim.Optimizer whose param groups carry a `use_muon` flag). torch 1.13 has no Muon and
no `param_names` in param groups, so this file implements it. Groups, in this order:
  group 0 (use_muon=True):  every 2-D parameter whose name contains neither "embed" nor
                            "lm_head", in model.named_parameters() order (NOT size-sorted: the
                            single-device KJ classes keep the given order; the distributed
                            `Muon`/`MuonWithAuxAdam` would sort by size).
                            state: momentum_buffer (EMA: B <- mu*B + (1-mu)*G, mu = 0.95);
                            NS input (Nesterov) = (1-mu)*G + mu*B, i.e. G.lerp(B, mu);
                            NS = KJ quintic (3.4445, -4.7750, 2.0315) x5 in bf16 on
                            X/(||X||_F + 1e-7), transposed so rows <= cols;
                            update scaled by sqrt(max(1, rows/cols)); lr 0.02, wd 0.
  group 1 (use_muon=False): everything else (embed_tokens, lm_head, all RMSNorm weights), in
                            model.named_parameters() order. state: exp_avg, exp_avg_sq, step
                            (a Python int, as in KJ's code); Adam with bias correction,
                            betas (0.9, 0.95), eps 1e-10, lr 3e-3, wd 0.
Optimizer ids are therefore: group-0 parameters 0..n0-1, then group-1 parameters. Each run's
muspec-run.json lists the names in that id order ("param_order"), with shapes and group sizes.

Checkpoints: <out>/<run>/checkpoint-<step>/ with
  model.safetensors  bf16 weights, written by hand from the safetensors spec (no safetensors
                     package on Debian): u64 LE header length, JSON header padded with spaces so
                     the data starts 8-aligned, tensors sorted by name, raw LE row-major bytes.
  optimizer.pt       torch.save(optimizer.state_dict()) with every floating-point state tensor
                     converted to bf16 (to keep sample_data small); the live fp32 state is untouched.
  config.json        HF-like LlamaConfig fields.
  trainer_state.json HF-like: global_step, max_steps, log_history (loss every 10 steps, eval_loss
                     at checkpoints), ...
and <out>/<run>/muspec-run.json (the run manifest).

Corpus (byte level): the concatenation, in this fixed order, of the license texts in
/usr/share/common-licenses/ listed in CORPUS_FILES (shipped by Debian's base-files package, so
present on every Debian bookworm system). The last 10% of the bytes are held out for eval_loss.
The SHA-256 of the corpus is stored in each manifest.
"""
import argparse
import hashlib
import json
import math
import os
import shutil
import struct
import sys
import time
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

CORPUS_DIR = "/usr/share/common-licenses"
CORPUS_FILES = [
    "Apache-2.0", "Artistic", "BSD", "CC0-1.0", "GFDL-1.2", "GFDL-1.3", "GPL-1", "GPL-2",
    "GPL-3", "LGPL-2", "LGPL-2.1", "LGPL-3", "MPL-1.1", "MPL-2.0",
]

VOCAB = 256
SEQ_LEN = 64
BATCH = 16
MAX_STEPS = 300
CHECKPOINT_STEPS = [10, 25, 50, 100, 200, 300]
LOG_EVERY = 10
WARMUP = 10
HEAD_DIM = 8
DATA_SEED = 1234          # same batches for every model size
EVAL_BATCHES = 8

# (run name, hidden size, layers). Same depth (4 layers) for all sizes, width varies; head_dim 8.
# Total parameters 21.6K ... 351K (non-embedding 13.5K ... 310K). The largest size is bounded by
# the 20 MB budget for sample_data/runs (6 checkpoints x (bf16 weights + bf16 optimizer state)).
SIZES = [
    ("d16", 16, 4),
    ("d24", 24, 4),
    ("d40", 40, 4),
    ("d56", 56, 4),
    ("d80", 80, 4),
]

MUON_HP = dict(lr=0.02, momentum=0.95, weight_decay=0.0)
ADAM_HP = dict(lr=3e-3, betas=(0.9, 0.95), eps=1e-10, weight_decay=0.0)
NS_COEFFS = (3.4445, -4.7750, 2.0315)
NS_STEPS = 5

# Per-run settings a size sweep may change (docs/case-study/). These defaults reproduce
# sample_data/runs byte for byte; a run given options records them under "sweep" in its manifest.
#   seed: 0 keeps the sample-data seeds (init 1000 + H, batches DATA_SEED); seed s adds
#         SEED_STRIDE * s to the init seed and s to the batch-order seed (eval batches are fixed).
#   state_dtype: "bfloat16" (small files) or "float32" (the live optimizer state, unrounded).
DEFAULT_RUN_OPTIONS = dict(seed=0, max_steps=MAX_STEPS, checkpoint_steps=CHECKPOINT_STEPS,
                           state_dtype="bfloat16")
SEED_STRIDE = 7919
STATE_DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}


def intermediate_size(h):
    """Llama's rule of thumb: 8/3 * H rounded up to a multiple of 8."""
    return int(8 * math.ceil((8 * h / 3) / 8))


# ----------------------------------------------------------------------------------- model

class RMSNorm(nn.Module):
    def __init__(self, h, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(h))
        self.eps = eps

    def forward(self, x):
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.eps))


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class Attention(nn.Module):
    def __init__(self, h, n_heads):
        super().__init__()
        self.n_heads = n_heads
        self.head_dim = h // n_heads
        self.q_proj = nn.Linear(h, h, bias=False)
        self.k_proj = nn.Linear(h, h, bias=False)
        self.v_proj = nn.Linear(h, h, bias=False)
        self.o_proj = nn.Linear(h, h, bias=False)

    def forward(self, x, cos, sin, mask):
        b, t, h = x.shape
        q = self.q_proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        att = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, h)
        return self.o_proj(y)


class MLP(nn.Module):
    def __init__(self, h, inter):
        super().__init__()
        self.gate_proj = nn.Linear(h, inter, bias=False)
        self.up_proj = nn.Linear(h, inter, bias=False)
        self.down_proj = nn.Linear(inter, h, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    # Registration order as in transformers' LlamaDecoderLayer: self_attn, mlp, input_layernorm,
    # post_attention_layernorm.
    def __init__(self, h, n_heads, inter):
        super().__init__()
        self.self_attn = Attention(h, n_heads)
        self.mlp = MLP(h, inter)
        self.input_layernorm = RMSNorm(h)
        self.post_attention_layernorm = RMSNorm(h)

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    def __init__(self, h, n_layers, n_heads, inter):
        super().__init__()
        self.embed_tokens = nn.Embedding(VOCAB, h)
        self.layers = nn.ModuleList([DecoderLayer(h, n_heads, inter) for _ in range(n_layers)])
        self.norm = RMSNorm(h)


class LlamaForCausalLM(nn.Module):
    def __init__(self, h, n_layers, n_heads, inter, max_pos=SEQ_LEN, rope_theta=10000.0):
        super().__init__()
        self.model = LlamaModel(h, n_layers, n_heads, inter)
        self.lm_head = nn.Linear(h, VOCAB, bias=False)
        hd = h // n_heads
        inv_freq = 1.0 / (rope_theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
        freqs = torch.outer(torch.arange(max_pos, dtype=torch.float32), inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        # non-persistent buffers: not part of state_dict, like HF's rotary cache
        self.register_buffer("rope_cos", emb.cos(), persistent=False)
        self.register_buffer("rope_sin", emb.sin(), persistent=False)
        mask = torch.triu(torch.ones(max_pos, max_pos, dtype=torch.bool), diagonal=1)
        self.register_buffer("causal_mask", mask, persistent=False)
        for m in self.modules():  # HF initializer_range 0.02
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def forward(self, idx):
        t = idx.shape[1]
        x = self.model.embed_tokens(idx)
        cos, sin, mask = self.rope_cos[:t], self.rope_sin[:t], self.causal_mask[:t, :t]
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask)
        return self.lm_head(self.model.norm(x))


# ------------------------------------------------------------------------------- optimizer

def zeropower_via_newtonschulz5(G, steps=NS_STEPS):
    """KJ quintic NS: bf16, transpose so rows <= cols, divide by Frobenius norm + 1e-7."""
    a, b, c = NS_COEFFS
    X = G.bfloat16()
    transposed = G.size(-2) > G.size(-1)
    if transposed:
        X = X.mT
    X = X / (X.norm(dim=(-2, -1), keepdim=True) + 1e-7)
    for _ in range(steps):
        A = X @ X.mT
        B = b * A + c * A @ A
        X = a * X + B @ X
    if transposed:
        X = X.mT
    return X


def muon_update(grad, momentum, beta, nesterov=True):
    momentum.lerp_(grad, 1 - beta)                       # EMA buffer
    update = grad.lerp_(momentum, beta) if nesterov else momentum
    update = zeropower_via_newtonschulz5(update)
    update = update.float() * max(1, grad.size(-2) / grad.size(-1)) ** 0.5
    return update


def adam_update(grad, buf1, buf2, step, betas, eps):
    buf1.lerp_(grad, 1 - betas[0])
    buf2.lerp_(grad.square(), 1 - betas[1])
    buf1c = buf1 / (1 - betas[0] ** step)
    buf2c = buf2 / (1 - betas[1] ** step)
    return buf1c / (buf2c.sqrt() + eps)


class MuonWithAuxAdam(torch.optim.Optimizer):
    """Single-device Muon + auxiliary Adam in one optimizer (groups carry `use_muon`)."""

    def __init__(self, param_groups):
        for group in param_groups:
            assert "use_muon" in group
            if group["use_muon"]:
                for k, v in MUON_HP.items():
                    group.setdefault(k, v)
            else:
                for k, v in ADAM_HP.items():
                    group.setdefault(k, v)
        super().__init__(param_groups, dict())

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                state = self.state[p]
                if group["use_muon"]:
                    if len(state) == 0:
                        state["momentum_buffer"] = torch.zeros_like(p)
                    update = muon_update(p.grad, state["momentum_buffer"], group["momentum"])
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                    p.add_(update.reshape(p.shape), alpha=-group["lr"])
                else:
                    if len(state) == 0:
                        state["exp_avg"] = torch.zeros_like(p)
                        state["exp_avg_sq"] = torch.zeros_like(p)
                        state["step"] = 0
                    state["step"] += 1
                    update = adam_update(p.grad, state["exp_avg"], state["exp_avg_sq"],
                                         state["step"], group["betas"], group["eps"])
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                    p.add_(update, alpha=-group["lr"])


def is_muon_param(name, p):
    return p.ndim == 2 and "embed" not in name and "lm_head" not in name


def build_optimizer(model):
    named = list(model.named_parameters())
    muon = [(n, p) for n, p in named if is_muon_param(n, p)]
    adam = [(n, p) for n, p in named if not is_muon_param(n, p)]
    groups = [
        dict(params=[p for _, p in muon], use_muon=True, **MUON_HP),
        dict(params=[p for _, p in adam], use_muon=False, **ADAM_HP),
    ]
    opt = MuonWithAuxAdam(groups)
    order = [n for n, _ in muon] + [n for n, _ in adam]
    return opt, order, len(muon), len(adam)


def state_dict_as(opt, dtype=torch.bfloat16):
    """optimizer.state_dict() with floating state tensors cast to `dtype` (fresh dicts: the live
    state is not modified)."""
    sd = opt.state_dict()
    state = {}
    for k, st in sd["state"].items():
        state[k] = {n: (v.detach().to(dtype).clone()
                        if torch.is_tensor(v) and v.is_floating_point() else v)
                    for n, v in st.items()}
    return {"state": state, "param_groups": sd["param_groups"]}


# ------------------------------------------------------------------------------ file output

def write_safetensors(path, tensors, metadata=None):
    """tensors: OrderedDict name -> torch tensor (any dtype torch can view as bytes)."""
    dtype_names = {torch.bfloat16: "BF16", torch.float16: "F16", torch.float32: "F32",
                   torch.float64: "F64", torch.int64: "I64", torch.int32: "I32"}
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):  # all tensors share one dtype here; the reference writer sorts
        t = tensors[name].detach().contiguous()   # by alignment then by name
        raw = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
        if sys.byteorder != "little":
            raise RuntimeError("big-endian host not supported")
        header[name] = {"dtype": dtype_names[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((-(8 + len(hjson))) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")


# ------------------------------------------------------------------------------------ data

def load_corpus():
    parts = []
    for name in CORPUS_FILES:
        path = os.path.join(CORPUS_DIR, name)
        with open(path, "rb") as f:
            parts.append(f.read())
    data = b"\n".join(parts)
    return data, hashlib.sha256(data).hexdigest()


def get_batch(data, gen, batch=BATCH):
    ix = torch.randint(0, data.numel() - SEQ_LEN - 1, (batch,), generator=gen)
    x = torch.stack([data[i:i + SEQ_LEN] for i in ix.tolist()])
    y = torch.stack([data[i + 1:i + 1 + SEQ_LEN] for i in ix.tolist()])
    return x.long(), y.long()


# -------------------------------------------------------------------------------- training

def lr_factor(step):
    """Linear warm-up over WARMUP steps, then constant (spectra can settle)."""
    return min(1.0, step / WARMUP)


def count_params(model):
    total = sum(p.numel() for p in model.parameters())
    emb = model.model.embed_tokens.weight.numel() + model.lm_head.weight.numel()
    return total, total - emb


def run_options(spec):
    """The spec's optional 7th element (a dict) over DEFAULT_RUN_OPTIONS; None without one."""
    given = spec[6] if len(spec) > 6 else None
    opts = dict(DEFAULT_RUN_OPTIONS, **(given or {}))
    opts["checkpoint_steps"] = sorted(set(opts["checkpoint_steps"]) | {opts["max_steps"]})
    if opts["state_dtype"] not in STATE_DTYPES:
        raise ValueError("state_dtype must be one of %s" % sorted(STATE_DTYPES))
    return opts, given is not None


def state_dtype_note(opts):
    if opts["state_dtype"] == "float32":
        return "float32 (the live optimizer state, saved as is)"
    return "bfloat16 (converted from fp32 just before saving)"


def train_one(spec):
    run, h, n_layers, out_dir, corpus_bytes, corpus_sha = spec[:6]
    opts, has_options = run_options(spec)
    max_steps, checkpoint_steps = opts["max_steps"], opts["checkpoint_steps"]
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(1000 + h + SEED_STRIDE * opts["seed"])
    n_heads = h // HEAD_DIM
    inter = intermediate_size(h)
    model = LlamaForCausalLM(h, n_layers, n_heads, inter)
    opt, order, n_muon, n_adam = build_optimizer(model)
    shapes = dict((n, list(p.shape)) for n, p in model.named_parameters())
    base_lr = [g["lr"] for g in opt.param_groups]

    data = torch.frombuffer(bytearray(corpus_bytes), dtype=torch.uint8)
    n_train = int(0.9 * data.numel())
    train_data, val_data = data[:n_train], data[n_train:]
    gen = torch.Generator().manual_seed(DATA_SEED + opts["seed"])
    eval_gen = torch.Generator().manual_seed(DATA_SEED + 1)
    eval_batches = [get_batch(val_data, eval_gen) for _ in range(EVAL_BATCHES)]

    run_dir = os.path.join(out_dir, run)
    if os.path.isdir(run_dir):
        shutil.rmtree(run_dir)
    os.makedirs(run_dir)
    total, non_emb = count_params(model)
    config = OrderedDict([
        ("architectures", ["LlamaForCausalLM"]),
        ("model_type", "llama"),
        ("vocab_size", VOCAB),
        ("hidden_size", h),
        ("intermediate_size", inter),
        ("num_hidden_layers", n_layers),
        ("num_attention_heads", n_heads),
        ("num_key_value_heads", n_heads),
        ("head_dim", HEAD_DIM),
        ("hidden_act", "silu"),
        ("max_position_embeddings", SEQ_LEN),
        ("rms_norm_eps", 1e-6),
        ("rope_theta", 10000.0),
        ("tie_word_embeddings", False),
        ("attention_bias", False),
        ("initializer_range", 0.02),
        ("torch_dtype", "bfloat16"),
        ("muspec_note", "written by tools/python/train_tiny_gpt.py (no transformers); "
                        "byte-level vocabulary"),
    ])
    manifest = OrderedDict([
        ("run", run),
        ("params", total),
        ("non_embedding_params", non_emb),
        ("non_embedding_definition", "total minus model.embed_tokens.weight and lm_head.weight "
                                     "(RMSNorm weights included)"),
        ("layers", n_layers),
        ("hidden_size", h),
        ("intermediate_size", inter),
        ("architecture", "llama"),
        ("recipe", "muon-then-adam"),
        ("recipe_definition",
         "one optimizer (KellerJordan SingleDeviceMuonWithAuxAdam style), two param groups: "
         "group 0 use_muon=True = 2-D params whose name contains neither 'embed' nor 'lm_head', "
         "group 1 use_muon=False = all other params; each group in model.named_parameters() "
         "order, not size-sorted; optimizer ids follow param_order"),
        ("param_order", order),
        ("param_shapes", [shapes[n] for n in order]),
        ("param_groups", [
            OrderedDict([("use_muon", True), ("num_params", n_muon),
                         ("state_keys", ["momentum_buffer"])]),
            OrderedDict([("use_muon", False), ("num_params", n_adam),
                         ("state_keys", ["exp_avg", "exp_avg_sq", "step"])]),
        ]),
        ("optimizer", OrderedDict([
            ("class", "MuonWithAuxAdam (single device, tools/python/train_tiny_gpt.py)"),
            ("muon", OrderedDict([("lr", MUON_HP["lr"]), ("momentum", MUON_HP["momentum"]),
                                  ("momentum_form", "ema"), ("nesterov", True),
                                  ("ns_coefficients", list(NS_COEFFS)), ("ns_steps", NS_STEPS),
                                  ("ns_eps", 1e-7), ("ns_dtype", "bfloat16"),
                                  ("adjust_lr", "original: sqrt(max(1, rows/cols))"),
                                  ("weight_decay", MUON_HP["weight_decay"])])),
            ("adam", OrderedDict([("lr", ADAM_HP["lr"]), ("betas", list(ADAM_HP["betas"])),
                                  ("eps", ADAM_HP["eps"]),
                                  ("weight_decay", ADAM_HP["weight_decay"]),
                                  ("step_type", "python int")])),
            ("lr_schedule", "linear warm-up over %d steps, then constant" % WARMUP),
        ])),
        ("optimizer_state_dtype", state_dtype_note(opts)),
        ("weights_dtype", "bfloat16 (converted from fp32 master weights)"),
        ("checkpoint_steps", checkpoint_steps),
        ("max_steps", max_steps),
        ("tokens_per_step", BATCH * SEQ_LEN),
        ("corpus", OrderedDict([("files", [os.path.join(CORPUS_DIR, n) for n in CORPUS_FILES]),
                                ("bytes", len(corpus_bytes)), ("sha256", corpus_sha),
                                ("heldout_fraction", 0.1)])),
        ("torch_version", torch.__version__),
    ])
    if has_options:
        manifest["sweep"] = OrderedDict(sorted(opts.items()))
    write_json(os.path.join(run_dir, "muspec-run.json"), manifest)

    log_history = []
    t0 = time.time()
    first_loss = None
    window = []
    for step in range(1, max_steps + 1):
        for g, lr in zip(opt.param_groups, base_lr):
            g["lr"] = lr * lr_factor(step)
        x, y = get_batch(train_data, gen)
        logits = model(x)
        loss = F.cross_entropy(logits.view(-1, VOCAB), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        lv = loss.item()
        if first_loss is None:
            first_loss = lv
        window.append(lv)
        if step % LOG_EVERY == 0:
            log_history.append(OrderedDict([
                ("epoch", round(step * BATCH * SEQ_LEN / train_data.numel(), 4)),
                ("learning_rate", opt.param_groups[0]["lr"]),
                ("loss", round(sum(window) / len(window), 4)),
                ("step", step)]))
            window = []
        if step in checkpoint_steps:
            model.eval()
            with torch.no_grad():
                ev = sum(F.cross_entropy(model(xe).view(-1, VOCAB), ye.view(-1)).item()
                         for xe, ye in eval_batches) / len(eval_batches)
            model.train()
            log_history.append(OrderedDict([
                ("epoch", round(step * BATCH * SEQ_LEN / train_data.numel(), 4)),
                ("eval_loss", round(ev, 4)), ("step", step)]))
            save_checkpoint(run_dir, step, model, opt, config, log_history, opts)
    curve = [(e["step"], e["loss"]) for e in log_history if "loss" in e]
    if has_options:
        print("%s: %d steps in %.0f s, eval_loss %.4f" % (run, max_steps, time.time() - t0,
                                                         log_history[-1]["eval_loss"]), flush=True)
    return dict(run=run, h=h, layers=n_layers, params=total, non_embedding=non_emb,
                first_loss=first_loss, last_loss=log_history[-2]["loss"], curve=curve,
                eval_loss=log_history[-1]["eval_loss"], seconds=time.time() - t0)


def save_checkpoint(run_dir, step, model, opt, config, log_history,
                    opts=DEFAULT_RUN_OPTIONS):
    d = os.path.join(run_dir, "checkpoint-%d" % step)
    os.makedirs(d)
    sd = OrderedDict((k, v.to(torch.bfloat16)) for k, v in model.state_dict().items())
    write_safetensors(os.path.join(d, "model.safetensors"), sd, {"format": "pt"})
    torch.save(state_dict_as(opt, STATE_DTYPES[opts["state_dtype"]]),
               os.path.join(d, "optimizer.pt"))
    write_json(os.path.join(d, "config.json"), config)
    state = OrderedDict([
        ("best_metric", None),
        ("best_model_checkpoint", None),
        ("epoch", log_history[-1]["epoch"]),
        ("global_step", step),
        ("is_hyper_param_search", False),
        ("is_local_process_zero", True),
        ("is_world_process_zero", True),
        ("log_history", list(log_history)),
        ("logging_steps", LOG_EVERY),
        ("max_steps", opts["max_steps"]),
        ("num_train_epochs", 1),
        ("save_steps", opts["checkpoint_steps"]),
        ("train_batch_size", BATCH),
        ("trial_name", None),
        ("trial_params", None),
    ])
    write_json(os.path.join(d, "trainer_state.json"), state)


def int_list(text):
    return [int(v) for v in text.split(",") if v]


def sweep_specs(args, corpus, sha):
    """Runs "h<H>-s<seed>" for every --widths x --seeds, with the sweep's run options."""
    specs = []
    for seed in args.seeds:
        for h in args.widths:
            if h % HEAD_DIM:
                raise SystemExit("--widths: %d is not a multiple of head_dim %d" % (h, HEAD_DIM))
            opts = dict(seed=seed, max_steps=args.steps, state_dtype=args.state_dtype,
                        checkpoint_steps=args.checkpoint_steps or [args.steps])
            specs.append(("h%d-s%d" % (h, seed), h, args.layers, args.out, corpus, sha, opts))
    return specs


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="sample_data/runs")
    ap.add_argument("--jobs", type=int, default=2,
                    help="worker processes (each single-threaded; results do not depend on it)")
    ap.add_argument("--only", nargs="*", help="train only these runs (e.g. d16 d32)")
    sweep = ap.add_argument_group("size sweep (replaces the sample-data SIZES; runs h<H>-s<seed>)")
    sweep.add_argument("--widths", type=int_list, help="hidden sizes, e.g. 16,32,64")
    sweep.add_argument("--layers", type=int, default=4, help="decoder layers of every run")
    sweep.add_argument("--seeds", type=int_list, default=[0], help="e.g. 0,1")
    sweep.add_argument("--steps", type=int, default=MAX_STEPS, help="training steps")
    sweep.add_argument("--checkpoint-steps", type=int_list, help="e.g. 100,500,1500")
    sweep.add_argument("--state-dtype", choices=sorted(STATE_DTYPES), default="bfloat16",
                       help="dtype of the saved optimizer state")
    return ap.parse_args()


def main():
    args = parse_args()
    corpus, sha = load_corpus()
    os.makedirs(args.out, exist_ok=True)
    if args.widths:
        # smallest first, seed-major: an interrupted sweep still has whole seeds
        specs = sweep_specs(args, corpus, sha)
        specs = [s for s in specs if not args.only or s[0] in args.only]
    else:
        sizes = [s for s in SIZES if not args.only or s[0] in args.only]
        # biggest first so the parallel pool finishes evenly
        specs = [(r, h, L, args.out, corpus, sha) for r, h, L in sorted(sizes, key=lambda s: -s[1])]
    t0 = time.time()
    if args.jobs > 1:
        import multiprocessing as mp
        with mp.get_context("spawn").Pool(args.jobs) as pool:
            results = pool.map(train_one, specs, chunksize=1)
    else:
        results = [train_one(s) for s in specs]
    results.sort(key=lambda r: (r["h"], r["run"]))
    print("corpus: %d bytes, sha256 %s" % (len(corpus), sha))
    print("%-5s %5s %6s %9s %9s %10s %10s %9s %7s" % ("run", "H", "layers", "params",
          "non-emb", "loss@1", "loss@end", "eval@end", "sec"))
    for r in results:
        print("%-5s %5d %6d %9d %9d %10.4f %10.4f %9.4f %7.1f" % (
            r["run"], r["h"], r["layers"], r["params"], r["non_embedding"], r["first_loss"],
            r["last_loss"], r["eval_loss"], r["seconds"]))
    print("loss curve (mean training loss over the 10 steps ending at the step shown):")
    shown = [10, 20, 50, 100, 150, 200, 250, 300] + [s for s in (500, 1000, 1500, 2000, 3000)
                                                     if s <= results[-1]["curve"][-1][0]]
    print("%-5s " % "run" + " ".join("%7d" % s for s in shown))
    for r in results:
        c = dict(r["curve"])
        print("%-5s " % r["run"] + " ".join("%7.3f" % c[s] if s in c else "%7s" % "-"
                                            for s in shown))
    print("total wall time %.1f s" % (time.time() - t0))


if __name__ == "__main__":
    main()
