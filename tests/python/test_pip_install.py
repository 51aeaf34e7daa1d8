"""`pip install ./tools/python` into a fresh venv (python3 -m venv --system-site-packages, as a user
on Debian bookworm does) gives both packages: `muspec` with its compiled module and
`muspec_torch`, imported from the venv with nothing of the source tree on the path. The module
is the one this build made (MUSPEC_BUILD_DIR), so the test takes seconds, not a C++ build."""
import ast
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from module_support import ROOT, muspec, needs_module

HAS_VENV = True
try:
    import ensurepip  # noqa: F401  (Debian: python3-venv)
    import venv  # noqa: F401
except ImportError:
    HAS_VENV = False


@needs_module
@unittest.skipUnless(HAS_VENV, "python3 -m venv is not available (Debian: python3-venv)")
class PipInstall(unittest.TestCase):
    def test_install_into_a_venv(self):
        module = muspec._lib.__file__  # build/python/_muspec....so
        build_dir = os.path.dirname(os.path.dirname(module))
        with tempfile.TemporaryDirectory() as d:
            # pip builds in the source tree; a copy keeps the checkout clean
            src = os.path.join(d, "src")
            shutil.copytree(os.path.join(ROOT, "tools", "python"), src,
                            ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info", "_muspec*.so"))
            env_dir = os.path.join(d, "venv")
            subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", env_dir], check=True,
                           capture_output=True, timeout=120)
            py = os.path.join(env_dir, "bin", "python")
            env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MUSPEC_MODULE_FILE")}
            env.update(MUSPEC_BUILD_DIR=build_dir, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
            p = subprocess.run([py, "-m", "pip", "install", "--no-build-isolation", "--no-deps", src], env=env,
                               capture_output=True, text=True, timeout=240)
            self.assertEqual(p.returncode, 0, p.stdout[-3000:] + p.stderr[-3000:])
            check = ("import muspec, muspec_torch, numpy as np; "
                     "print(muspec.__file__); print(muspec._lib.__file__); print(muspec_torch.__file__); "
                     "x = np.diag([3.0, 2.0, 1.0]); print(list(muspec.singular_values(x, method='svd')))")
            p = subprocess.run([py, "-c", check], env=env, cwd=d, capture_output=True, text=True, timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)
            lines = p.stdout.splitlines()
            for path in lines[:3]:
                self.assertTrue(path.startswith(env_dir), f"{path} is not inside the venv")
            self.assertTrue(lines[1].endswith(os.path.basename(module)))
            self.assertEqual([round(v, 12) for v in ast.literal_eval(lines[3])], [1.0, 2.0, 3.0])


if __name__ == "__main__":
    unittest.main()
