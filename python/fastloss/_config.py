"""Build and run-time configuration: ``fastloss.show_config()``."""

from __future__ import annotations

import os
import sys

import numpy as np

from . import _core


def build_info():
    """A dict describing the build and the run time choices (SIMD level, threads)."""
    info = dict(_core.build_info())
    info["isa_compiled"] = info["isa_compiled"].split()
    info["python"] = sys.version.split()[0]
    info["numpy"] = np.__version__
    info["omp_num_threads_env"] = os.environ.get("OMP_NUM_THREADS")
    info["fastloss_cpu_env"] = os.environ.get("FASTLOSS_CPU")
    return info


def show_config():
    """Print the version, compiler and flags, SIMD level in use, and threading."""
    i = build_info()
    lines = [
        f"fastloss {i['version']}",
        f"  compiler      : {i['compiler']}",
        f"  flags         : {i['cxx_flags'].strip() or '(default)'}",
        f"  SIMD in use   : {i['isa_active']}"
        + (f"  (forced by FASTLOSS_CPU={i['fastloss_cpu_env']})" if i["fastloss_cpu_env"] else ""),
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
