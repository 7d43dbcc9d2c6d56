"""show_config and build_info describe the build and the run time."""

import re

import fastloss


def test_show_config_prints_the_facts(capsys):
    fastloss.show_config()
    out = capsys.readouterr().out
    assert out.startswith(f"fastloss {fastloss.__version__}")
    for key in ["compiler", "flags", "SIMD in use", "SIMD compiled", "threads"]:
        assert key in out
    info = fastloss.build_info()
    assert info["isa_active"] in ("baseline", "avx2", "avx512")
    assert "baseline" in info["isa_compiled"]
    assert info["max_threads"] >= 1
    assert re.match(r"\d+\.\d+\.\d+", fastloss.__version__)
