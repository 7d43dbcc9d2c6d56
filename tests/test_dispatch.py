"""The instruction-set level: chosen at import from the CPU, lowered by FASTLOSS_CPU, never
raised above what the CPU supports; show_config() reports it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import fastloss

LEVELS = ["baseline", "avx2", "avx512"]
INFO = fastloss.build_info()
SUPPORTED = [x for x in INFO["isa_compiled"] if LEVELS.index(x) <= LEVELS.index(INFO["isa_best"])]


def _info(cpu):
    env = {k: v for k, v in os.environ.items() if k != "FASTLOSS_CPU"}
    if cpu is not None:
        env["FASTLOSS_CPU"] = cpu
    code = (
        "import json, io, contextlib, numpy as np, fastloss\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out): fastloss.show_config()\n"
        "i = fastloss.build_info()\n"
        "s = np.linspace(-3, 3, 64 * 7, dtype=np.float32).reshape(64, 7)\n"
        "y = np.arange(64) % 7\n"
        "i['losses'] = [float(fastloss.multiclass_hinge(s, y, grad=False)),"
        " float(fastloss.softmax_cross_entropy(s, y, grad=False))]\n"
        "i['show_config'] = out.getvalue()\n"
        "print(json.dumps(i))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_levels_compiled_and_best():
    assert INFO["isa_compiled"][0] == "baseline"
    assert set(INFO["isa_compiled"]) <= set(LEVELS)
    assert INFO["isa_best"] in INFO["isa_compiled"]
    assert "-march=native" not in INFO["cxx_flags"]


def test_active_level_honours_fastloss_cpu():
    """Under CI's forced runs (FASTLOSS_CPU set), the whole suite really runs that level."""
    want = os.environ.get("FASTLOSS_CPU")
    if want in SUPPORTED:
        assert INFO["isa_active"] == want and not INFO["isa_note"]
    elif not want:
        assert INFO["isa_active"] == INFO["isa_best"]


@pytest.mark.parametrize("level", SUPPORTED)
def test_each_supported_level_can_be_forced(level):
    i = _info(level)
    assert i["isa_active"] == level and i["isa_note"] == ""
    assert f"SIMD in use   : {level}  (forced by FASTLOSS_CPU={level})" in i["show_config"]
    base = _info("baseline")["losses"]
    assert i["losses"] == pytest.approx(base, rel=1e-5)


@pytest.mark.parametrize("value", ["bogus", "AVX2 ", "avx1024"] + [
    x for x in LEVELS if x not in SUPPORTED
])
def test_unknown_or_unsupported_level_falls_back_with_a_note(value):
    i = _info(value)
    assert i["isa_active"] == INFO["isa_best"]
    assert f"FASTLOSS_CPU={value}" in i["isa_note"]
    assert "ignored" in i["show_config"] and "note" in i["show_config"]


def test_empty_fastloss_cpu_means_the_best():
    i = _info("")
    assert i["isa_active"] == INFO["isa_best"] and i["isa_note"] == ""
