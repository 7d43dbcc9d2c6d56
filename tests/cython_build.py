"""Builds tests/cython_user.pyx, a user's extension of fastloss's C-level API, the way a
user builds one: setuptools + Cython's cythonize, nothing from fastloss but the installed
package (Cython finds fastloss/cython_kernels.pxd on sys.path), OpenMP for its prange.
Used by tests/test_cython.py and benchmarks/bench_cython.py."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

PYX = Path(__file__).with_name("cython_user.pyx")
MODULE = "fastloss_cython_user"

SETUP_PY = textwrap.dedent(
    f"""
    from Cython.Build import cythonize
    from setuptools import Extension, setup

    ext = Extension("{MODULE}", ["{MODULE}.pyx"],
                    extra_compile_args=["-O2", "-fopenmp"], extra_link_args=["-fopenmp"])
    setup(name="{MODULE}", ext_modules=cythonize([ext], quiet=True))
    """
)


def build(folder: Path):
    """Builds the extension in `folder` (outside the source tree) and imports it."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(PYX, folder / f"{MODULE}.pyx")
    (folder / "setup.py").write_text(SETUP_PY)
    env = dict(os.environ)
    # (under the sanitizer run, the compiler need not run with the sanitizer runtime)
    env.pop("LD_PRELOAD", None)
    r = subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--inplace"],
        cwd=folder, env=env, capture_output=True, text=True,
    )
    if r.returncode != 0:
        raise RuntimeError(
            f"building the Cython user extension failed ({r.returncode}):\n"
            f"{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
        )
    so = sorted(folder.glob(f"{MODULE}*.so"))
    if not so:
        raise RuntimeError(f"no {MODULE}*.so in {folder}:\n{r.stdout[-4000:]}")
    spec = importlib.util.spec_from_file_location(MODULE, so[0])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


DOCS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "guide" / "cython.md"


def build_docs_example(folder: Path):
    """Builds the example of docs/guide/cython.md as its reader would: its ```cython block
    saved as my_train.pyx, its setup.py block saved as setup.py, `python setup.py
    build_ext --inplace`; returns the imported module my_train."""
    import re

    text = DOCS_PAGE.read_text(encoding="utf-8")
    pyx = re.search(r"^```cython\n(.*?)^```", text, re.S | re.M)
    setup = re.search(r"^```\{code-block\} python\n(# setup\.py.*?)^```", text, re.S | re.M)
    if pyx is None or setup is None:
        raise RuntimeError(f"{DOCS_PAGE} lacks its my_train.pyx or setup.py block")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "my_train.pyx").write_text(pyx.group(1))
    (folder / "setup.py").write_text(setup.group(1))
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    r = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=folder,
                       env=env, capture_output=True, text=True)
    so = sorted(folder.glob("my_train*.so"))
    if r.returncode != 0 or not so:
        raise RuntimeError(f"building the documentation's example failed ({r.returncode}):\n"
                           f"{r.stdout[-4000:]}\n{r.stderr[-4000:]}")
    spec = importlib.util.spec_from_file_location("my_train", so[0])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
