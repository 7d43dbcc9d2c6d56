"""``fastloss bench --json FILE`` and ``--plot FILE.png``: the benchmark's results as a
machine-readable file and as a bar chart of the ratios (log scale)."""

from __future__ import annotations

import datetime
import json
import os
import platform
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

#: one benchmark row: operation, shape, fastloss / NumPy / PyTorch median seconds
Row = tuple[str, str, float, Optional[float], Optional[float]]


def cpu_model() -> str:
    """The CPU's model name (``lscpu``'s "Model name"), or the platform's description."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def environment(torch_version: str | None, quick: bool) -> dict[str, Any]:
    """What the figures depend on: machine, SIMD level, threads, versions, date."""
    from . import build_info

    info = build_info()
    return {
        "date": datetime.date.today().isoformat(),
        "machine": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "simd_level": info["isa_active"],
        "threads": info["max_threads"],
        "fastloss": info["version"],
        "numpy": np.__version__,
        "torch": torch_version,
        "python": platform.python_version(),
        "quick": quick,
    }


def write_json(rows: Sequence[Row], env: dict[str, Any], path: str) -> None:
    """Write ``{"environment": ..., "results": [...]}``: medians in seconds, and ratios
    (the other's median / fastloss's; > 1: fastloss is faster)."""
    results = []
    for op, shape, tf, tn, tt in rows:
        results.append({
            "operation": op, "shape": shape, "fastloss_s": tf, "numpy_s": tn,
            "torch_s": tt, "ratio_numpy": tn / tf if tn else None,
            "ratio_torch": tt / tf if tt else None,
        })
    with open(path, "w") as f:
        json.dump({"environment": env, "results": results}, f, indent=2)
        f.write("\n")


def plot(rows: Sequence[Row], env: dict[str, Any], path: str) -> None:
    """A horizontal bar chart of the ratios against NumPy (and PyTorch), log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    labels = [f"{op}\n{shape}" for op, shape, *_ in rows]
    numpy_r = [tn / tf if tn else np.nan for _, _, tf, tn, _ in rows]
    torch_r = [tt / tf if tt else np.nan for _, _, tf, _, tt in rows]
    with_torch = any(np.isfinite(torch_r))
    n = len(rows)
    h = 0.38 if with_torch else 0.6
    ypos = np.arange(n)
    fig, ax = plt.subplots(figsize=(9, 0.62 * n + 1.9))
    bars = [("NumPy (fastloss.reference; HOG: scikit-image)", numpy_r, "#4C72B0")]
    if with_torch:
        bars.append(("PyTorch", torch_r, "#DD8452"))
    for k, (name, r, colour) in enumerate(bars):
        off = (k - (len(bars) - 1) / 2) * h
        ax.barh(ypos + off, r, height=h, color=colour, label=name, left=0)
        for yi, ri in zip(ypos + off, r):
            if np.isfinite(ri):
                ax.text(ri * 1.04, yi, f"{ri:.1f}x", va="center", fontsize=8)
    ax.set_xscale("log")
    finite = [x for x in numpy_r + torch_r if np.isfinite(x)]
    lo = min(finite + [1.0]) / 2
    hi = max(finite + [1.0]) * 3
    ax.set_xlim(lo, hi)
    ax.axvline(1.0, color="black", lw=0.8)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.set_yticks(ypos, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("speed-up of fastloss: the other's median time / fastloss's (log scale; "
                  "> 1: fastloss is faster)", fontsize=9)
    torch_txt = f"PyTorch {env['torch']}" if env["torch"] else "PyTorch not installed"
    ax.set_title(f"fastloss {env['fastloss']} benchmark{' (--quick)' if env['quick'] else ''}"
                 f", {env['date']}\n{env['machine']}, SIMD {env['simd_level']}, "
                 f"{env['threads']} threads; NumPy {env['numpy']}, {torch_txt}", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", which="major", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
