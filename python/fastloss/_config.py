"""Build and run-time configuration: ``fastloss.show_config()``."""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

from . import _core


def build_info() -> dict[str, Any]:
    """The build and the run-time choices, as a dict.

    Returns
    -------
    dict
        Keys include ``"version"``, ``"compiler"``, ``"cxx_flags"``, ``"isa_active"`` (the
        SIMD level in use: ``"baseline"``, ``"avx2"`` or ``"avx512"``), ``"isa_compiled"``
        (a list), ``"isa_best"`` (the best level this CPU supports), ``"openmp"``,
        ``"max_threads"`` (the default thread count), ``"python"`` and ``"numpy"``.
    """
    info: dict[str, Any] = dict(_core.build_info())
    info["isa_compiled"] = info["isa_compiled"].split()
    info["python"] = sys.version.split()[0]
    info["numpy"] = np.__version__
    info["omp_num_threads_env"] = os.environ.get("OMP_NUM_THREADS")
    info["fastloss_cpu_env"] = os.environ.get("FASTLOSS_CPU")
    return info


def _forced(i: dict[str, Any]) -> str:
    env = i["fastloss_cpu_env"]
    if not env:
        return ""
    if i["isa_note"]:  # not honoured: the note says why
        return f"  (FASTLOSS_CPU={env} ignored)"
    return f"  (forced by FASTLOSS_CPU={env})"


def show_config() -> None:
    """Print the version, the compiler and its flags, the SIMD level in use and threads.

    The same as ``fastloss config`` on the command line; ``build_info()`` returns the
    values as a dict.
    """
    i = build_info()
    lines = [
        f"fastloss {i['version']}",
        f"  compiler      : {i['compiler']}",
        f"  flags         : {i['cxx_flags'].strip() or '(default)'}",
        f"  SIMD in use   : {i['isa_active']}" + _forced(i),
        f"  SIMD compiled : {', '.join(i['isa_compiled'])}",
        f"  SIMD best here: {i['isa_best']}",
        f"  threads       : {'OpenMP' if i['openmp'] else 'none (single thread)'}, "
        f"{i['max_threads']} by default (n_threads=None)"
        + (f", OMP_NUM_THREADS={i['omp_num_threads_env']}" if i["omp_num_threads_env"] else ""),
        f"  python {i['python']}, numpy {i['numpy']}",
    ]
    if i["isa_note"]:
        lines.append(f"  note          : {i['isa_note']}")
    print("\n".join(lines))
