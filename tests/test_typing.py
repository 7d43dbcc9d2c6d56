"""The type stubs of the compiled module: installed with the package (with py.typed),
complete (mypy's stubtest against the imported module), of the bindings' arity, and in
force (mypy --strict accepts a typed usage example and rejects misuse)."""

from __future__ import annotations

import ast
import importlib.metadata
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import fastloss
from fastloss import _core

pytest.importorskip("mypy")


def _editable():
    try:
        url = importlib.metadata.distribution("fastloss").read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:  # a source tree on PYTHONPATH
        return False
    return bool(url and json.loads(url).get("dir_info", {}).get("editable"))


# mypy cannot follow the import hook of an editable install (pip install -e .): it checks
# installed copies, as CI's wheel.
needs_installed = pytest.mark.skipif(
    _editable(), reason="mypy does not see editable installs; CI checks the installed wheel"
)

PKG = Path(fastloss.__file__).resolve().parent
STUB = PKG / "_core.pyi"
EXAMPLE = Path(__file__).resolve().parent / "typing_example.py"

# Misuse that the stubs must reject (the line's expected mypy error code after "# E:").
MISUSE = """\
import numpy as np
from fastloss import _core

a = np.zeros((2, 3), np.float32)
_core.max_threads(2)  # E: call-arg
_core.softmax_rows(a, a, True)  # E: call-arg
_core.softmax_rows(a, a, "log", 1)  # E: arg-type
flag: str = _core.build_info()["openmp"]  # E: assignment
n: str = _core.score_loss(a, None, None, None, None, 0, 1.0, False, 0.0, 1, None, None, 1, 0.0, None)  # E: assignment
_core.build_info()["no_such_key"]  # E: typeddict-item
_core.no_such_function()  # E: attr-defined
"""


ROOT = Path(__file__).resolve().parent.parent


def _mypy_env():
    """MYPYPATH for a source tree on PYTHONPATH (mypy never looks there); an installed
    package is found by mypy itself (site-packages may not be on MYPYPATH)."""
    import os

    env = dict(os.environ)
    if "site-packages" not in PKG.parent.parts and "dist-packages" not in PKG.parent.parts:
        env["MYPYPATH"] = str(PKG.parent)
    return env


def _run(args, cwd):
    """python -m args in cwd (outside the source tree), with an empty mypy configuration."""
    (cwd / "mypy.ini").write_text("[mypy]\n")
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=600,
        env=_mypy_env(),
    )


def test_stub_and_marker_are_installed_with_the_package():
    assert STUB.is_file(), f"{STUB} is missing: the wheel must ship python/fastloss/_core.pyi"
    assert (PKG / "py.typed").is_file(), f"{PKG / 'py.typed'} is missing"


@needs_installed
def test_stubtest_finds_the_stub_complete(tmp_path):
    r = _run(["mypy.stubtest", "fastloss._core", "--mypy-config-file", "mypy.ini"], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


def _stub_functions():
    tree = ast.parse(STUB.read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            a = node.args
            out[node.name] = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs)
    return out


def test_stub_arity_matches_the_bindings():
    """pybind11 writes each function's signature as the first line of its docstring
    ("name(arg0: ..., arg1: ...) -> ..."); stubtest cannot read it, so count here. A
    function written directly on CPython's API carries a text signature instead."""
    stub = _stub_functions()
    for name, n_stub in stub.items():
        fn = getattr(_core, name)
        if getattr(fn, "__text_signature__", None):
            n_runtime = len(inspect.signature(fn).parameters)
            assert n_runtime == n_stub, f"{name}: {n_runtime} arguments, the stub has {n_stub}"
            continue
        doc = fn.__doc__.splitlines()[0]
        m = re.match(rf"{name}\((.*)\) -> ", doc)
        assert m, doc
        n_runtime = len(re.findall(r"\barg\d+:", m.group(1)))
        assert n_runtime == n_stub, f"{name}: {n_runtime} arguments, the stub has {n_stub}"


@needs_installed
def test_mypy_accepts_the_example_and_rejects_misuse(tmp_path):
    misuse = tmp_path / "misuse.py"
    misuse.write_text(MISUSE)
    r = _run(
        [
            "mypy",
            "--strict",
            "--show-error-codes",
            "--no-error-summary",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--config-file",
            "mypy.ini",
            str(EXAMPLE),
            str(misuse),
        ],
        tmp_path,
    )
    assert r.returncode in (0, 1), r.stdout + r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ": error:" in ln]
    assert not [ln for ln in lines if EXAMPLE.name in ln], r.stdout + r.stderr
    got = sorted(
        (int(m.group(1)), m.group(2))
        for ln in lines
        if (m := re.match(r".*misuse\.py:(\d+): error: .*\[([\w-]+)\]$", ln))
    )
    want = sorted(
        (k, ln.split("# E: ")[1].strip())
        for k, ln in enumerate(MISUSE.splitlines(), 1)
        if "# E: " in ln
    )
    assert got == want, r.stdout + r.stderr


@needs_installed
def test_mypy_passes_on_the_package(tmp_path):
    """mypy -p fastloss with the project's configuration ([tool.mypy] in pyproject.toml)."""
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(tmp_path / "cache"), "-p", "fastloss"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env=_mypy_env(),
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Success: no issues found" in r.stdout


def _public_callables():
    import importlib
    import pkgutil

    mods = [fastloss]
    for m in pkgutil.iter_modules(fastloss.__path__):
        if m.name.startswith("_") or m.name == "reference":
            continue
        try:
            mods.append(importlib.import_module(f"fastloss.{m.name}"))
        except ModuleNotFoundError as e:  # fastloss.torch / .jax without their framework
            if e.name not in ("torch", "jax"):
                raise
    for mod in mods:
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if attr.startswith("_") and attr != "__init__":
                        continue
                    if isinstance(member, property):
                        member = member.fget
                    if inspect.isfunction(member):
                        yield f"{mod.__name__}.{name}.{attr}", member
            elif inspect.isfunction(obj):
                yield f"{mod.__name__}.{name}", obj


def test_every_public_function_and_method_is_annotated():
    """PEP 484 annotations on every parameter and every return of the public names (the
    __all__ of each public module; fastloss.reference is the NumPy oracle, not API)."""
    missing = []
    seen = 0
    for qual, fn in _public_callables():
        seen += 1
        sig = inspect.signature(fn)
        for p in sig.parameters.values():
            if p.name != "self" and p.annotation is inspect.Parameter.empty:
                missing.append(f"{qual}: parameter {p.name}")
        if sig.return_annotation is inspect.Signature.empty:
            missing.append(f"{qual}: return")
    assert seen >= 30
    assert not missing, "\n".join(missing)
