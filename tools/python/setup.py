"""Packaging of `import muspec` (the compiled module _muspec plus the pure-Python package) and the
PyTorch adapter `muspec_torch` (metadata in pyproject.toml). The compiled module comes from
CMake, which knows how to find muspec's C++ dependencies; this file only puts it in the wheel:

* MUSPEC_MODULE_FILE=/path/to/_muspec....so: that file;
* else MUSPEC_BUILD_DIR=/path/to/build: its python/_muspec*.so (a tree configured by CMake);
* else the repository's build/python/_muspec*.so when this is tools/python of a checkout with one;
* else (a checkout without a built module) CMake configures ../../build-pip and builds only the
  target muspec_python, for the interpreter running pip (minutes; MUSPEC_PIP_CMAKE=0 turns it off).

MUSPEC_PIP_MODULE=0 installs without the compiled module: the trainer adapter `muspec_torch` alone
(`import muspec` then says how to get the module), e.g. on a training machine without a C++ build.

    pip install --no-build-isolation ./tools/python     # offline, with Debian's python3-setuptools

A module built for another interpreter (its file name's ABI tag) is refused with a message.
"""
import glob
import os
import shutil
import subprocess
import sys
import sysconfig

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SUFFIX = sysconfig.get_config_var("EXT_SUFFIX")  # e.g. .cpython-311-x86_64-linux-gnu.so


def _in_checkout():
    return os.path.exists(os.path.join(REPO, "CMakeLists.txt")) and os.path.isdir(os.path.join(REPO, "lib"))


WITH_MODULE = os.environ.get("MUSPEC_PIP_MODULE", "1") != "0"
HINT = "(MUSPEC_PIP_MODULE=0 installs the trainer adapter muspec_torch alone; docs/python.md)"


def _cmake_build():
    if os.environ.get("MUSPEC_PIP_CMAKE", "1") == "0":
        return None
    build = os.path.join(REPO, "build-pip")
    jobs = os.environ.get("MUSPEC_PIP_JOBS", str(os.cpu_count() or 1))
    try:
        subprocess.check_call(["cmake", "-S", REPO, "-B", build, "-DCMAKE_BUILD_TYPE=Release",
                               f"-DMUSPEC_PYTHON={sys.executable}", "-DMUSPEC_PYTHON_MODULE=ON"])
        subprocess.check_call(["cmake", "--build", build, "--target", "muspec_python", "-j", jobs])
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit(f"muspec: building the compiled module with CMake failed ({e}); run tools/setup.sh "
                         f"for the Debian packages, or set MUSPEC_BUILD_DIR to a build tree {HINT}") from e
    return os.path.join(build, "python")


def _module_file():
    given = os.environ.get("MUSPEC_MODULE_FILE", "")
    if given:
        if not os.path.isfile(given):
            raise SystemExit(f"muspec: MUSPEC_MODULE_FILE={given}: no such file")
        candidates = [given]
    else:
        dirs = []
        if os.environ.get("MUSPEC_BUILD_DIR"):
            dirs.append(os.path.join(os.environ["MUSPEC_BUILD_DIR"], "python"))
        elif _in_checkout():
            dirs.append(os.path.join(REPO, "build", "python"))
        candidates = [f for d in dirs for f in glob.glob(os.path.join(d, "_muspec*.so"))]
        if not candidates and _in_checkout() and not os.environ.get("MUSPEC_BUILD_DIR"):
            built = _cmake_build()
            candidates = glob.glob(os.path.join(built, "_muspec*.so")) if built else []
    if not candidates:
        raise SystemExit("muspec: no compiled module _muspec found: build muspec with CMake (pybind11-dev, "
                         "python3-dev) and set MUSPEC_BUILD_DIR=<build dir> or MUSPEC_MODULE_FILE=<.so> "
                         + HINT)
    for f in candidates:
        if os.path.basename(f) == "_muspec" + SUFFIX:
            return f
    raise SystemExit(f"muspec: {', '.join(candidates)} was built for another Python (this one, {sys.executable}, "
                     f"needs _muspec{SUFFIX}); configure CMake with -DMUSPEC_PYTHON={sys.executable}")


class BuildWithModule(build_py):
    """The pure-Python packages, plus _muspec copied into muspec/ of the build."""

    def run(self):
        super().run()
        if not WITH_MODULE:
            print("muspec: MUSPEC_PIP_MODULE=0: packaging without the compiled module _muspec")
            return
        src = _module_file()
        dest = os.path.join(self.build_lib, "muspec", os.path.basename(src))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(src, dest)
        print(f"muspec: packaged {src}")


class BinaryDistribution(Distribution):
    """A wheel with a compiled module: tagged for this interpreter and platform."""

    def has_ext_modules(self):
        return WITH_MODULE


setup(cmdclass={"build_py": BuildWithModule}, distclass=BinaryDistribution)
