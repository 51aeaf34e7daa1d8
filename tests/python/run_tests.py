#!/usr/bin/env python3
"""Runner for the muspec_torch tests, used by ctest (tests/CMakeLists.txt).

Exit status: 0 all passed, 1 a test failed, 77 skipped because this interpreter cannot import
torch or numpy (ctest reports SKIP_RETURN_CODE 77 as "Skipped", never as passed).

    /usr/bin/python3 tests/python/run_tests.py [-q] [unittest name patterns...]
"""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SKIP = 77


def main(argv):
    for mod, hint in (("torch", "python3-torch (Debian) or `pip install torch`"),
                      ("numpy", "python3-numpy")):
        try:
            __import__(mod)
        except Exception as e:  # ImportError, or a broken install
            print(f"SKIP: muspec_torch tests need {mod}; {sys.executable} cannot import it "
                  f"({type(e).__name__}: {e}). Install {hint}.", file=sys.stderr)
            return SKIP
    pkg = os.path.join(ROOT, "tools", "python")
    if pkg not in sys.path:
        sys.path.insert(0, pkg)
    verbosity = 1 if "-q" in argv else 2
    names = [a for a in argv if a != "-q"]
    loader = unittest.defaultTestLoader
    if names:
        sys.path.insert(0, HERE)
        suite = loader.loadTestsFromNames(names)
    else:
        suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    result = unittest.TextTestRunner(verbosity=verbosity).run(suite)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
