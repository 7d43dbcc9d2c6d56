"""Sphinx configuration of the fastloss documentation.

Build: ``python -m sphinx -W -b html docs docs/_build/html`` (``pip install ".[docs]"``);
fastloss itself must be importable (installed, or ``PYTHONPATH=python`` after a build).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import fastloss

project = "fastloss"
author = "the fastloss authors"
copyright = "2026, the fastloss authors"
release = fastloss.__version__
version = release

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"fastloss {release}"
html_static_path = ["_static"]

# API reference: every public name of a module is documented (autodoc follows each
# module's __all__), and numpydoc renders the docstrings' sections.
# (the classifiers' fit/predict/train live in a private base class: inherited members are
# documented, except scikit-learn's own, see _skip_foreign_members)
autodoc_default_options = {"members": True, "inherited-members": True}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
# the aliases of fastloss._typing, shown by name rather than expanded
autodoc_type_aliases = {n: n for n in ("ArrayLike", "NDArray", "FloatArray", "Loss", "DTypeLike")}
# optional packages of optional modules: documented without being installed
autodoc_mock_imports = ["torch", "jax", "jaxlib", "dask", "distributed"]
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# ---- one API page per public module, generated at build time ----------------------------
# Known modules get their title and place; any other public module of the package (a new
# feature) gets a page too, titled by the first line of its docstring.
API_ORDER = {
    "losses": "Score level: losses and softmax",
    "linear": "Model level: linear_loss and the CS231n functions",
    "optim": "Optimizers",
    "gradcheck": "Gradient checking",
    "classifiers": "Classifiers",
    "features": "Image features",
    "datasets": "Data sets",
    "reference": "NumPy reference",
    "cli": "Command line entry point",
    "torch": "PyTorch operations",
    "jax": "JAX functions",
    "cython_kernels": "C-level API for Cython",
    "dask": "Scale-out on Dask",
}
HERE = Path(__file__).parent
GEN = HERE / "api" / "generated"


def _importable(name: str) -> bool:
    """False for a module whose optional framework (an extra) is not installed: its page
    is left out of a build without it (CI installs every extra and builds them all)."""
    try:
        importlib.import_module(f"fastloss.{name}")
    except ModuleNotFoundError as e:
        if name in ("torch", "jax") and e.name is not None and e.name.split(".")[0] == name:
            return False
        raise
    return True


def _public_modules() -> list[str]:
    names = [m.name for m in pkgutil.iter_modules(fastloss.__path__)
             if not m.name.startswith("_") and _importable(m.name)]
    known = [n for n in API_ORDER if n in names]
    return known + sorted(n for n in names if n not in API_ORDER)


def _write_api_pages() -> None:
    GEN.mkdir(parents=True, exist_ok=True)
    wanted = set()
    for i, name in enumerate(_public_modules()):
        mod = f"fastloss.{name}"
        title = API_ORDER.get(name)
        if title is None:
            doc = (importlib.import_module(mod).__doc__ or name).strip().splitlines()[0]
            title = doc.rstrip(".")
        page = GEN / f"{i:02d}_{name}.rst"
        wanted.add(page.name)
        text = f"{title}\n{'=' * len(title)}\n\n.. automodule:: {mod}\n   :members:\n"
        if not page.exists() or page.read_text() != text:
            page.write_text(text)
    for old in GEN.glob("*.rst"):
        if old.name not in wanted:
            old.unlink()


_write_api_pages()


def _skip_foreign_members(app, what, name, obj, skip, options):
    """Document a class's own members, not those scikit-learn's base classes add
    (``set_fit_request``, ``get_params``, ...): they are scikit-learn's documentation."""
    if what == "class":
        mod = getattr(obj, "__module__", None) or ""
        qual = getattr(obj, "__qualname__", "") or ""
        if isinstance(obj, property):
            mod = getattr(obj.fget, "__module__", "") or ""
        if not mod.startswith("fastloss") or "RequestMethod" in qual:
            return True
    return None


def _alias_names(app, what, name, obj, options, signature, return_annotation):
    """Sphinx writes an alias inside a union as TypeAliasForwardRef('ArrayLike'): show
    the alias's name, as it is written in the source."""
    fix = lambda t: t and re.sub(r"TypeAliasForwardRef\('([\w.]+)'\)", r"\1", t)
    return fix(signature), fix(return_annotation)


def setup(app):
    app.connect("autodoc-skip-member", _skip_foreign_members)
    app.connect("autodoc-process-signature", _alias_names)
