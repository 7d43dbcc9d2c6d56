"""Which fastloss the tests exercise.

Always: the compiled module and the package metadata are of the same build. With
FASTLOSS_TEST_INSTALLED=1 (set by .ci/run and cibuildwheel, which install the repaired
wheel into a fresh environment and run the tests from another folder): the imported
package is the installed wheel's files in site-packages, not the source tree, and the
OpenMP runtime in use is the one auditwheel bundled into the wheel.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import fastloss
from fastloss import _core

REPO = Path(__file__).resolve().parents[1]
PKG = Path(fastloss.__file__).resolve().parent
installed_only = pytest.mark.skipif(
    os.environ.get("FASTLOSS_TEST_INSTALLED") != "1",
    reason="checks an installed wheel: runs when FASTLOSS_TEST_INSTALLED=1 (as CI sets it)",
)


def test_compiled_module_matches_the_distribution():
    assert _core.build_info()["version"] == importlib.metadata.version("fastloss")
    assert fastloss.__version__ == importlib.metadata.version("fastloss")


@installed_only
def test_imported_from_site_packages_not_the_source_tree():
    site = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
    assert PKG.parent in site, f"fastloss imported from {PKG}, not from {sorted(site)}"
    assert REPO not in PKG.parents, f"fastloss imported from the source tree: {PKG}"
    assert Path(_core.__file__).resolve().parent == PKG, _core.__file__
    assert str(REPO / "python") not in [str(Path(p).resolve()) for p in sys.path if p]


@installed_only
def test_imported_files_are_the_wheels_own():
    """The files Python imported are those the installed distribution's RECORD lists (an
    editable install or a source folder on sys.path would import other files)."""
    dist = importlib.metadata.distribution("fastloss")
    recorded = {Path(dist.locate_file(f)).resolve() for f in dist.files or []}
    for mod in (fastloss, _core, fastloss.losses, fastloss.features):
        assert Path(mod.__file__).resolve() in recorded, mod.__file__
    assert PKG / "_core.pyi" in recorded and PKG / "py.typed" in recorded


@installed_only
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_openmp_runtime_is_the_bundled_one():
    if not fastloss.build_info()["openmp"]:
        pytest.skip("built without OpenMP")
    code = (
        "import numpy as np, fastloss\n"
        "s = np.ones((100_000, 10), np.float32); y = np.zeros(100_000, np.int64)\n"
        "fastloss.multiclass_hinge(s, y, n_threads=2)\n"
        "print('\\n'.join(sorted({l.split()[-1] for l in open('/proc/self/maps')"
        " if 'gomp' in l})))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert r.returncode == 0, r.stderr
    libs = [Path(p) for p in r.stdout.split()]
    assert libs, "no OpenMP runtime is loaded"
    assert all(p.parent == PKG.parent / "fastloss.libs" for p in libs), libs
