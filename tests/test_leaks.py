"""Leaks (issue 8): memory, references and the output pool stay bounded over many calls.

- 1,000,000 small calls (every public loss and softmax, fast and slow argument paths, and
  calls that raise) keep the process's resident memory growth under 5 MB and the
  reference counts of their inputs unchanged. Marked slow (~15 s): part of the default
  run; deselect it with -m "not slow".
- The output pool that large gradients come from holds at most 4 blocks and 1 GB, however
  many gradients are made, kept or dropped.
"""

from __future__ import annotations

import gc
import os
import sys

import numpy as np
import pytest

import fastloss as fl
import fastloss.features as F
from fastloss import _core

SANITIZED = bool(os.environ.get("FASTLOSS_SANITIZED"))  # .ci/sanitize.sh: RSS is ASan's
MB = 1 << 20


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def small_inputs():
    rng = np.random.default_rng(0)
    return {
        "s": rng.normal(size=(4, 3)),
        "s32": rng.normal(size=(4, 3)).astype(np.float32),
        "sF": np.asfortranarray(rng.normal(size=(4, 3))),
        "y": np.array([0, 1, 2, 0]),
        "y8": np.array([0, 1, 2, 0], np.uint8),
        "ybad": np.array([0, 1, 3, 0]),
        "sw": rng.random(4),
        "cw": rng.random(3) + 0.5,
        "q": fl.softmax(rng.normal(size=(4, 3))),
        "img": rng.integers(0, 256, (8, 8, 3)).astype(np.uint8),
        "X": rng.normal(size=(4, 5)),
        "W": rng.normal(size=(5, 3)),
        "p": rng.normal(size=7),
        "g": rng.normal(size=7) * 1e-6,
    }


def call_mix(d):
    """One of each kind of call, on the inputs d: the fast path, conversions, weights,
    soft targets, the CS231n drop-ins, softmax, features, the model level, an in-place
    update, and errors."""
    s, s32, sF, y, y8 = d["s"], d["s32"], d["sF"], d["y"], d["y8"]
    return [
        lambda: fl.multiclass_hinge(s, y),
        lambda: fl.multiclass_hinge(sF, y8, variant="crammer_singer", grad=False),
        lambda: fl.softmax_cross_entropy(s32, y),
        lambda: fl.softmax_cross_entropy(s, y, sample_weight=d["sw"], class_weight=d["cw"],
                                         reduction="none"),  # fmt: skip
        lambda: fl.softmax_cross_entropy(s, d["q"], label_smoothing=0.1),
        lambda: fl.svm_loss(s, y),
        lambda: fl.softmax_loss(s, y),
        lambda: fl.softmax(s),
        lambda: fl.log_softmax(s32, axis=0),
        lambda: F.color_histogram_hsv(d["img"]),
        lambda: fl.linear_loss(d["W"], d["X"], y, reg=1e-3),
        lambda: fl.sgd_step(d["p"], d["g"], lr=1e-3),
        lambda: fl.multiclass_hinge(s, d["ybad"]),  # ValueError from the kernel
        lambda: fl.softmax_cross_entropy(s, y, reduction="avg"),  # ValueError in Python
    ]


def run_calls(fns, n):
    k = len(fns)
    for i in range(n):
        try:
            fns[i % k]()
        except ValueError:
            pass


def refcounts(d):
    return {k: sys.getrefcount(v) for k, v in d.items()}


@pytest.mark.slow
@pytest.mark.skipif(SANITIZED, reason="RSS under AddressSanitizer is its own")
def test_million_small_calls_keep_memory_and_refcounts():
    d = small_inputs()
    fns = call_mix(d)
    run_calls(fns, 50_000)  # warm up: allocator caches, interned objects, the pool
    gc.collect()
    refs = refcounts(d)
    objects = len(gc.get_objects())
    rss0 = rss_bytes()
    run_calls(fns, 1_000_000)
    gc.collect()
    grew = rss_bytes() - rss0
    assert grew < 5 * MB, f"RSS grew by {grew / MB:.1f} MB over 1,000,000 calls"
    assert refcounts(d) == refs
    assert len(gc.get_objects()) - objects < 100


def test_refcounts_unchanged_by_every_call():
    d = small_inputs()
    fns = call_mix(d)
    run_calls(fns, 100)
    refs = refcounts(d)
    run_calls(fns, 5000)
    assert refcounts(d) == refs
    # results hold no hidden references: a fresh result is referenced by its name only
    loss, g = fl.softmax_cross_entropy(d["s"], d["y"])
    assert sys.getrefcount(g) == 2 and sys.getrefcount(loss) == 2
    p = fl.softmax(d["s"])
    assert sys.getrefcount(p) == 2


def test_refcounts_of_large_inputs_and_pooled_outputs():
    rng = np.random.default_rng(1)
    s = rng.normal(size=(20_000, 10))  # 1.6 MB gradients: from the pool
    y = rng.integers(0, 10, 20_000)
    sw = rng.random(20_000)
    for _ in range(3):
        fl.multiclass_hinge(s, y, sample_weight=sw)
    refs = [sys.getrefcount(a) for a in (s, y, sw)]
    for _ in range(50):
        _, g = fl.multiclass_hinge(s, y, sample_weight=sw)
        assert sys.getrefcount(g) == 2
        del g
    assert [sys.getrefcount(a) for a in (s, y, sw)] == refs


def pool_ok():
    blocks, held = _core.pool_info()
    assert blocks <= 4 and held <= 1 << 30, (blocks, held)
    return blocks, held


def test_output_pool_is_bounded():
    rng = np.random.default_rng(2)
    _core.pool_clear()
    assert _core.pool_info() == (0, 0)
    # many live gradients of one size, then all dropped at once: at most 4 blocks stay
    s = rng.normal(size=(20_000, 10))
    y = rng.integers(0, 10, 20_000)
    live = [fl.softmax_cross_entropy(s, y)[1] for _ in range(12)]
    del live
    gc.collect()
    assert pool_ok()[0] == 4
    # gradients of many sizes, kept and dropped in turn: the pool never grows past its bound
    rss0 = rss_bytes()
    keep = []
    for i in range(300):
        n = int(rng.integers(13_000, 60_000))
        _, g = fl.multiclass_hinge(s[:1].repeat(n, 0) if i % 50 == 0 else s[: min(n, 20_000)],
                                   y[:1].repeat(n, 0) if i % 50 == 0 else y[: min(n, 20_000)])  # fmt: skip
        if i % 7 == 0:
            keep.append(g)
        if len(keep) > 5:
            keep.pop(0)
        pool_ok()
    del keep, g
    gc.collect()
    pool_ok()
    if not SANITIZED:  # the pool's blocks (< 4 x 2 x 4.8 MB) and NumPy's own caches
        assert rss_bytes() - rss0 < 64 * MB
    _core.pool_clear()
    assert _core.pool_info() == (0, 0)


def test_pool_blocks_return_after_the_last_view_dies():
    """A pooled gradient's block returns to the pool only when its last view is gone."""
    rng = np.random.default_rng(3)
    s = rng.normal(size=(20_000, 10))
    y = rng.integers(0, 10, 20_000)
    _core.pool_clear()
    _, g = fl.softmax_cross_entropy(s, y)
    view = g[5:7]
    del g
    gc.collect()
    assert _core.pool_info()[0] == 0  # the view keeps the block alive
    del view
    gc.collect()
    assert _core.pool_info()[0] == 1
    _core.pool_clear()
