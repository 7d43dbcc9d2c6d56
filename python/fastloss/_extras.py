"""Optional packages: imported when first needed, and when missing, one line naming the
extra that installs them."""

from __future__ import annotations

import importlib
from types import ModuleType

# module -> (the package's name on PyPI, fastloss's extra that installs it)
EXTRAS = {
    "sklearn": ("scikit-learn", "sklearn"),
    "scipy": ("SciPy", "sklearn"),
    "matplotlib": ("matplotlib", "plot"),
    "tqdm": ("tqdm", "progress"),
    "dask": ("dask", "dask"),
    "distributed": ("distributed", "dask"),
    "torch": ("PyTorch", "torch"),
    "jax": ("JAX", "jax"),
}


class MissingExtraError(ModuleNotFoundError):
    """An optional package is not installed; the message names the extra to install."""


def missing(module: str, what: str) -> MissingExtraError:
    """The error for `what`, which needs `module` (a key of EXTRAS)."""
    package, extra = EXTRAS[module]
    return MissingExtraError(
        f'{what} needs {package}, which is not installed: pip install "fastloss[{extra}]"',
        name=module,
    )


def translate(e: ModuleNotFoundError, module: str, what: str) -> ModuleNotFoundError:
    """The error to raise for `e` caught around imports of `module`: MissingExtraError when
    `module` itself is missing, else `e` (an ImportError from inside an installed package)."""
    if e.name is not None and e.name.split(".")[0] == module:
        return missing(module, what)
    return e


def require(module: str, what: str) -> ModuleType:
    """Import `module` (a top-level package of EXTRAS), or raise MissingExtraError naming
    the extra. An ImportError from inside an installed package is left as it is."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        raise translate(e, module, what) from None


def available(module: str) -> bool:
    """Whether `module` imports (an ImportError for any other reason counts as missing)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
