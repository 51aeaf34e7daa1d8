"""Shared set-up of the tests of the compiled module (`import muspec`): imports it, or explains
why the tests skip. Under ctest in a build with the module (MUSPEC_PYTHON_MODULE_BUILT=1) a
failed import is an error, never a skip."""
import os
import subprocess
import unittest

BINARY = os.environ.get("MUSPEC_BINARY", "")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILT = os.environ.get("MUSPEC_PYTHON_MODULE_BUILT") == "1"

try:
    import muspec
    IMPORT_ERROR = None
except ImportError as e:
    if BUILT:
        raise
    muspec = None
    IMPORT_ERROR = str(e)

needs_module = unittest.skipIf(muspec is None, f"compiled module not built: {IMPORT_ERROR}")
needs_cli = unittest.skipUnless(BINARY and os.path.exists(BINARY), "MUSPEC_BINARY is not set (run through ctest)")


def run_cli(*args, check=True):
    """Runs the muspec CLI; returns the CompletedProcess (text)."""
    p = subprocess.run([BINARY, *map(str, args)], capture_output=True, text=True, timeout=240)
    if check and p.returncode != 0:
        raise AssertionError(f"muspec {' '.join(map(str, args))} exited {p.returncode}: {p.stderr}")
    return p
