"""AdaptiveMuon: AMO-style observe-then-commit inside one training run.

For the first ``warmup`` steps every Muon matrix uses the default schedule (Keller Jordan's
quintic x5). At step ``warmup`` the momentum buffers' spectra are recorded (SpectralMonitor,
into a spectra.h5 store) and muspec's planner (``muspec plan``: exact max-min allocation of NS
steps under a FLOP budget, by operator type or by layer, promised at the configured precision)
commits one schedule per parameter for the rest of training. The decision is logged (logger
``muspec_torch.amo``), kept in ``self.amo`` and saved in ``state_dict()``, so a resumed run
keeps the committed schedules.

    opt = AdaptiveMuon(model, warmup=100, mean_steps=4, lr=0.02)
"""
import json
import logging
import os
import tempfile

from .config import load_ns_config
from .mapping import map_parameters
from .monitor import SpectralMonitor
from .optimizer import Muon

log = logging.getLogger("muspec_torch.amo")
_SCHEDULE_KEYS = ("params", "param_names", "ns_steps", "ns_coefficients", "ns_delta", "ns_eps", "ns_batched")


class AdaptiveMuon(Muon):
    """``muspec_torch.Muon`` that observes for ``warmup`` steps, then commits the plan.

    model: the torch.nn.Module (names and shapes of its Muon matrices). mean_steps / budget: the
    planner's budget (the cost of that many steps on every matrix, or total NS flops per step;
    default mean_steps=4). by: "optype" or "layer". family, precision, max_steps, quantile: as
    ``muspec plan``. store: where the observed spectra go (default: a temporary file). run: the
    run label in the store. default: the warm-up schedule (and the fallback for matrices the plan
    does not cover). Other keyword arguments go to :class:`Muon` (lr, momentum, ...).
    """

    def __init__(self, model, *, warmup=100, mean_steps=None, budget=None, by="optype", family="keller",
                 precision="bf16", max_steps=15, quantile=0.05, store=None, run="run", default="keller",
                 **muon_kwargs):
        if warmup < 1:
            raise ValueError(f"AdaptiveMuon: warmup must be >= 1, got {warmup}")
        if mean_steps is None and budget is None:
            mean_steps = 4
        super().__init__(model, None, fallback=default, **muon_kwargs)
        self._model, self._default = model, default
        self._plan_options = dict(mean_steps=mean_steps, budget=budget, by=by, family=family, precision=precision,
                                  max_steps=max_steps, quantile=quantile)
        self._own_store = store is None
        if store is None:
            fd, store = tempfile.mkstemp(prefix="muspec-amo-", suffix=".h5")
            os.close(fd)
        self.store = store
        self._monitor = SpectralMonitor(self, every=warmup, path=store, model=model, run=run)
        self.amo = dict(warmup=int(warmup), steps=0, committed=False, config=None, decision=None, run=run)

    def step(self, closure=None):
        loss = super().step(closure)
        self.amo["steps"] += 1
        if not self.amo["committed"] and self.amo["steps"] == self.amo["warmup"]:
            self.commit()
        return loss

    def commit(self):
        """Observes the momentum buffers now, plans, and switches to the planned schedules."""
        import muspec
        self._monitor.observe(self.amo["steps"])
        self._monitor.flush()
        o = self._plan_options
        r = muspec._lib.plan(self.store, mean_steps=o["mean_steps"], budget=o["budget"], by=o["by"],
                             family=o["family"], precision=o["precision"], max_steps=o["max_steps"],
                             quantile=o["quantile"], run=self.amo["run"], kind="momentum")
        self._apply(r["config"])
        self.amo.update(committed=True, config=r["config"], decision=self.decision())
        log.info("AdaptiveMuon committed at step %d (%s): %s", self.amo["steps"],
                 ", ".join(f"{k}={v}" for k, v in o.items() if v is not None), self.amo["decision"])

    def decision(self):
        """{parameter name: NS steps} of the current schedules."""
        return {n: g["ns_steps"] for g in self.param_groups for n in g["param_names"]}

    def _apply(self, config_text):
        mapping = map_parameters(self._model, load_ns_config(json.loads(config_text)), fallback=self._default)
        hyper = {k: v for k, v in self.param_groups[0].items() if k not in _SCHEDULE_KEYS}
        self.param_groups = []
        for g in self.schedule_groups(mapping):
            self.add_param_group({**hyper, **g})
        self.mapping = mapping

    def state_dict(self):
        sd = super().state_dict()
        sd["muspec_amo"] = dict(self.amo)
        return sd

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        amo = state_dict.pop("muspec_amo", None)
        if amo and amo.get("committed"):
            self._apply(amo["config"])  # the saved groups are the committed plan's
        super().load_state_dict(state_dict)
        if amo:
            self.amo = dict(amo)

    def close(self):
        """Removes the temporary spectra store (a store you named is kept)."""
        if self._own_store and os.path.exists(self.store):
            os.remove(self.store)
