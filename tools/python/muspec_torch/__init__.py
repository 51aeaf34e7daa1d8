"""muspec_torch: apply muspec's per-layer Newton–Schulz recommendations in PyTorch.

Main entry points:

* :func:`load_ns_config` -- read and validate ``ns_config.json`` (``muspec.ns_config`` v1);
* :func:`map_parameters` -- assign each Muon parameter of a model its schedule (exact name,
  then pattern, then default), with clear errors on mismatch;
* :class:`Muon` -- a ``torch.optim.Optimizer`` applying each parameter's own per-step schedule;
* :func:`newton_schulz` -- the NS iteration for one matrix and one :class:`Schedule`;
* :class:`SpectralMonitor` -- spectra of the optimizer's momentum buffers every N steps, into a
  spectra.h5 that ``muspec fit/recommend`` read (needs the compiled module, ``import muspec``);
* :class:`AdaptiveMuon` -- observe-then-commit: the default schedule for a warm-up, then the
  schedules ``muspec plan`` allocates from the observed spectra (kept in the state_dict);
* :func:`torch_muon_param_groups` -- ``torch.optim.Muon`` parameter groups from a
  ``muspec.torch_groups`` file (PyTorch >= 2.9).

See ``docs/trainer-adapter.md`` in the muspec repository.
"""

from .config import (KELLER_COEFFICIENTS, ConfigError, NSConfig, ParameterEntry, PatternEntry,
                     Schedule, canonical_name, load_ns_config)
from .mapping import (Assignment, DefaultScheduleWarning, MappingError, ParameterMapping, UnusedPatternWarning,
                      as_schedule, default_is_muon_eligible, map_parameters)
from .newton_schulz import as_matrix, newton_schulz, resolve_dtype
from .adaptive import AdaptiveMuon
from .monitor import SpectralMonitor
from .optimizer import Muon, adjusted_lr
from .torch_groups import (InexactScheduleWarning, TorchGroupsConfig, build_torch_muon_groups,
                           load_torch_groups, torch_muon_available, torch_muon_param_groups)

__version__ = "0.1.0"

__all__ = [
    "KELLER_COEFFICIENTS", "ConfigError", "NSConfig", "ParameterEntry", "PatternEntry",
    "Schedule", "canonical_name", "load_ns_config", "Assignment", "MappingError",
    "ParameterMapping", "UnusedPatternWarning", "DefaultScheduleWarning", "as_schedule", "default_is_muon_eligible",
    "map_parameters", "as_matrix", "newton_schulz", "resolve_dtype", "Muon", "adjusted_lr",
    "InexactScheduleWarning", "TorchGroupsConfig", "build_torch_muon_groups",
    "load_torch_groups", "torch_muon_available", "torch_muon_param_groups", "SpectralMonitor", "AdaptiveMuon", "__version__",
]
