"""SpectralMonitor: spectra of an optimizer's state (momentum buffers by default) every N steps
of a training run, stored in a muspec spectra.h5 that ``muspec fit/recommend/report`` read.

    monitor = SpectralMonitor(opt, every=50, path="spectra.h5", model=model, run="d80")
    for step in range(1, steps + 1):
        ...; opt.step()
        monitor.step()                 # observes at steps 50, 100, ...
    monitor.close()                    # writes the store (atomically); also on `with`
    print(monitor.cost_report())

Where the tensors are: on a GPU, ``torch.linalg.svdvals`` in float64 on the device (only the
singular values come back); on the CPU, muspec's compiled module reads the tensor in place
(``import muspec``). Labels (operator type, layer, Muon eligibility) come from muspec's naming
table, as a scan of the same checkpoint would give them. Records are written through muspec's
store code (``muspec.write_spectra``), so the schema is exactly the scan's.
"""
import math
import os
import time

import torch

# Optimizer state keys per monitored kind (the names muspec's scan gives them).
STATE_KEYS = {"momentum": ("momentum_buffer", "momentum"), "exp_avg": ("exp_avg", "moment1"),
              "exp_avg_sq": ("exp_avg_sq", "moment2")}
DTYPE_NAMES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16"}


def _muspec():
    try:
        import muspec
    except ImportError as e:
        raise ImportError("SpectralMonitor needs muspec's compiled module (`import muspec`); " + str(e)) from e
    return muspec


class SpectralMonitor:
    """Records the spectra of ``optimizer``'s state tensors every ``every`` steps.

    optimizer: any torch.optim.Optimizer. kinds: which state ("momentum" = momentum_buffer,
    "exp_avg", "exp_avg_sq", or a state key as is). model: names the parameters (else
    ``names``: {param: name}; else "group<g>.param<i>") and gives model_params (total parameter
    count). run: the run label. num_layers: blocks in the model (default: highest block index + 1,
    as the scan infers it). quantiles: levels of the summary (default: the scan's). method:
    auto | svd | gram on the CPU (the GPU always uses a float64 SVD). flush_every: also write the
    store every that many observations (it is always written on close).
    """

    def __init__(self, optimizer, every=100, kinds=("momentum",), quantiles=None, path="spectra.h5", model=None,
                 names=None, run="run", num_layers=None, family="", method="auto", flush_every=None, min_dim=2):
        if every < 1:
            raise ValueError(f"SpectralMonitor: every must be >= 1, got {every}")
        self.muspec = _muspec()
        self.optimizer, self.every, self.kinds = optimizer, int(every), tuple(kinds)
        self.quantiles = list(quantiles) if quantiles else list(self.muspec.default_quantiles())
        self.path, self.run, self.family, self.method = os.fspath(path), run, family, method
        self.flush_every, self.min_dim = flush_every, min_dim
        self.names = dict(names or {})
        self.model_params = 0
        if model is not None:
            seen = set()
            for n, p in model.named_parameters():
                self.names.setdefault(p, n)
                if id(p) not in seen:  # tied weights once, as the scan counts them
                    seen.add(id(p))
                    self.model_params += p.numel()
        self.labels = {}
        self.num_layers = num_layers if num_layers is not None else self._infer_layers()
        self.records = []
        self.steps_seen = 0
        self.observations = 0
        self.observe_seconds = 0.0
        self._last_step_time = None
        self._step_seconds = []
        self._closed = False

    # ---- labels -------------------------------------------------------------------------
    def _params(self):
        for g, group in enumerate(self.optimizer.param_groups):
            for i, p in enumerate(group["params"]):
                yield p, self.names.get(p, f"group{g}.param{i}")

    def _label(self, p, name):
        key = (name, tuple(p.shape))
        if key not in self.labels:
            self.labels[key] = self.muspec.identify(name, list(p.shape), self.family)
        return self.labels[key]

    def _infer_layers(self):
        layers = [self._label(p, n)["layer"] for p, n in self._params() if p.ndim == 2]
        return max(layers) + 1 if layers and max(layers) >= 0 else 0

    # ---- observation --------------------------------------------------------------------
    def step(self, step=None):
        """Call once per optimizer step (after ``optimizer.step()``); observes when the step
        count (``step`` if given, else the calls so far) is a multiple of ``every``."""
        now = time.perf_counter()
        if self._last_step_time is not None:
            self._step_seconds.append(now - self._last_step_time)
        self.steps_seen += 1
        step = self.steps_seen if step is None else int(step)
        if step % self.every == 0:
            self.observe(step)
        self._last_step_time = time.perf_counter()  # intervals between calls leave observations out

    def _state_tensor(self, p, kind):
        state = self.optimizer.state.get(p, {})
        for key in STATE_KEYS.get(kind, (kind,)):
            t = state.get(key)
            if torch.is_tensor(t):
                return t
        return None

    @torch.no_grad()
    def observe(self, step):
        """Records every monitored state tensor now, labelled with ``step``; returns the seconds spent."""
        t0 = time.perf_counter()
        cuda = False
        for p, name in self._params():
            for kind in self.kinds:
                t = self._state_tensor(p, kind)
                if t is None or t.ndim != 2 or not t.is_floating_point() or min(t.shape) < self.min_dim:
                    continue
                cuda = cuda or t.is_cuda
                self.records.append(self._record(t, name, kind, step))
        if cuda:
            torch.cuda.synchronize()
        spent = time.perf_counter() - t0
        self.observations += 1
        self.observe_seconds += spent
        if self.flush_every and self.observations % self.flush_every == 0:
            self.flush()
        return spent

    def _spectrum(self, t, rows, cols, name, kind):
        if t.is_cuda:  # on the device, float64; only min(rows, cols) values come back
            x = t.detach().double()
            finite = torch.isfinite(x)
            nonfinite = int((~finite).sum().item())
            if nonfinite:
                return dict(nonfinite=nonfinite, sigma=[], method="svd", device="cuda", floor=0.0, frobenius=0.0)
            sigma = torch.linalg.svdvals(x).flip(0).cpu().numpy()
            return dict(nonfinite=0, sigma=sigma, method="svd", device="cuda",
                        floor=self.muspec.svd_floor(float(sigma[-1]), rows, cols),
                        frobenius=float(torch.linalg.norm(x).item()))
        buf, dtype = self.muspec.as_buffer(t)
        r = self.muspec._lib.analyse_array(buf, method=self.method, dtype=dtype, quantiles=self.quantiles,
                                           name=f"{name} ({kind})")
        return dict(nonfinite=r["nonfinite"], sigma=r["sigma"], method=r["method"] or "svd", device=r["device"] or "cpu",
                    floor=r["floor"], frobenius=r["frobenius"])

    def _record(self, t, name, kind, step):
        lab = self._label(t, name)
        rows, cols = (t.shape[1], t.shape[0]) if lab["transposed"] else tuple(t.shape)
        layer = lab["layer"]
        rel = -1.0
        if 0 <= layer < self.num_layers:
            rel = 0.0 if self.num_layers == 1 else layer / (self.num_layers - 1)
        rec = dict(name=name, tensor=name, rows=rows, cols=cols, tensor_shape=list(t.shape),
                   dtype=DTYPE_NAMES.get(t.dtype, str(t.dtype)), run=self.run, step=step,
                   model_params=self.model_params, params_source="model" if self.model_params else "",
                   kind=kind, parameter=lab["parameter"] or name, op_type=lab["op_type"], layer=layer,
                   num_layers=self.num_layers, rel_depth=rel, muon=lab["muon"], transposed=lab["transposed"],
                   file="SpectralMonitor")
        rec.update(self._spectrum(t, rows, cols, name, kind))
        return rec

    # ---- output -------------------------------------------------------------------------
    def flush(self):
        """Writes every record so far to ``path`` (atomically: temporary file + rename)."""
        attributes = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                      "command": f"muspec_torch.SpectralMonitor(every={self.every}, kinds={list(self.kinds)})",
                      "backend": "torch.linalg.svdvals (float64, cuda) / muspec cpu"}
        self.muspec.write_spectra(self.path, self.records, attributes, self.quantiles)

    def close(self):
        if not self._closed:
            self.flush()
            self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def cost_report(self):
        """Time per observation and per training step (wall clock between step() calls, with
        the observations taken out), and the overhead ratio over the run."""
        steps = self._step_seconds
        per_obs = self.observe_seconds / self.observations if self.observations else float("nan")
        train = sum(steps)
        per_step = train / len(steps) if steps else float("nan")
        overhead = self.observe_seconds / train if steps and train > 0 else float("nan")
        return dict(observations=self.observations, matrices=len(self.records), seconds_per_observation=per_obs,
                    seconds_per_step=per_step, every=self.every,
                    overhead=overhead,  # observation time / training time
                    text=(f"SpectralMonitor: {self.observations} observations ({len(self.records)} matrices), "
                          f"{per_obs * 1e3:.2f} ms each; training step {per_step * 1e3:.2f} ms; every {self.every} "
                          f"steps the overhead is {100 * overhead:.2f} % of training time"
                          if not math.isnan(overhead) else "SpectralMonitor: not enough steps for a cost report"))
