"""muspec for Python: the C++ library behind the ``muspec`` CLI, on NumPy arrays, CPU torch
tensors and pandas DataFrames.

    import muspec
    sigma = muspec.singular_values(x)            # ascending float64, like the scan's spectra
    row = muspec.summarize(x)                    # the scan's summary fields for one matrix
    df = muspec.read_spectra("spectra.h5")       # == pandas.read_csv("summary.csv")
    df = muspec.scan(["checkpoints/"], kind="momentum")
    laws = muspec.fit(["d16.h5", "d24.h5", "d40.h5"])   # == laws.json of `muspec fit`
    muspec.predict(laws, 7e9); muspec.recommend("spectra.h5"); muspec.ns.design(1e-3, 8)

The compiled part is the extension ``_muspec`` (tools/python/bindings, built by CMake into
``build/python``; see docs/python.md for how it is found). Arrays are read in place through the
buffer protocol; library errors arrive as :class:`muspec.Error` subclasses with the CLI's messages.
"""
import io

try:
    from . import _muspec as _lib  # copied into the package (pip install, docs/python.md)
except ImportError:
    try:
        import _muspec as _lib  # built into build/python, which is on PYTHONPATH
    except ImportError as e:
        raise ImportError(
            "muspec's compiled module _muspec was not found: build muspec with CMake (pybind11-dev and "
            "python3-dev installed, MUSPEC_PYTHON_MODULE=AUTO or ON) and put build/python on PYTHONPATH, "
            "or then `pip install --no-build-isolation ./tools/python`, which packages it (not with "
            f"MUSPEC_PIP_MODULE=0) (docs/python.md). Import error: {e}") from e

from . import ns
from .arrays import as_buffer, singular_values, summarize
from .laws import fit, predict, recommend
from .tables import plan, read_spectra, scan, write_spectra

Error = _lib.Error
InputError = _lib.InputError
UsageError = _lib.UsageError
NumericalError = _lib.NumericalError
NotAvailableError = _lib.NotAvailableError
identify = _lib.identify
default_quantiles = _lib.default_quantiles
svd_floor = _lib.svd_floor
gram_floor = _lib.gram_floor
__version__ = _lib.__version__

__all__ = ["singular_values", "summarize", "read_spectra", "write_spectra", "scan", "plan", "fit", "predict",
           "recommend", "identify", "as_buffer",
           "default_quantiles", "svd_floor", "gram_floor", "Error", "InputError", "UsageError",
           "NumericalError", "NotAvailableError", "ns", "__version__"]
